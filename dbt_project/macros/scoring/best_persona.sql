{#-
    Each contact's best persona (SPEC §2.3): the matching persona with the highest match_pct;
    ties go to the persona listed first in the configuration. One definition for every model
    that needs it.
-#}
{% macro best_persona_per_contact() -%}
    select distinct on (contact_id)
        contact_id,
        persona_id as best_persona
    from {{ ref('int_contacts_persona_matched') }}
    where is_match
    order by contact_id asc, match_pct desc, persona_position asc
{%- endmacro %}


{#- Every enriched contact with its best persona (NULL when no persona matches). -#}
{% macro contacts_with_best_persona() -%}
    select
        enriched.*,
        best_persona.best_persona
    from {{ ref('int_contacts_enriched') }} as enriched
    left join ({{ best_persona_per_contact() }}) as best_persona
        on enriched.contact_id = best_persona.contact_id
{%- endmacro %}
