{#-
    Each contact's best persona (SPEC §2.3): the matching persona with the highest match_pct;
    ties go to the persona listed first in the configuration. One definition for every model
    that needs it. `contact_ids` (a query returning contact ids), when given, restricts both
    macros to those contacts: a join would not reach inside DISTINCT ON, which would then sort
    the rows of every contact.
-#}
{% macro best_persona_per_contact(contact_ids=none) -%}
    {%- set only_these = 'true' if contact_ids is none
        else 'matched.contact_id in (' ~ contact_ids ~ ')' %}
    select distinct on (matched.contact_id)
        matched.contact_id,
        matched.persona_id as best_persona
    from {{ ref('int_contacts_persona_matched') }} as matched
    where matched.is_match and {{ only_these }}
    order by matched.contact_id asc, matched.match_pct desc, matched.persona_position asc
{%- endmacro %}


{#- Every enriched contact (or those of `contact_ids`) with its best persona (NULL if none). -#}
{% macro contacts_with_best_persona(contact_ids=none) -%}
    {%- set only_these = 'true' if contact_ids is none
        else 'enriched.contact_id in (' ~ contact_ids ~ ')' %}
    select
        enriched.*,
        best_persona.best_persona
    from {{ ref('int_contacts_enriched') }} as enriched
    left join ({{ best_persona_per_contact(contact_ids) }}) as best_persona
        on enriched.contact_id = best_persona.contact_id
    where {{ only_these }}
{%- endmacro %}
