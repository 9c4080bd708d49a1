{#-
    Incremental persona matching and profile scoring.

    A contact's persona matches and profile score are a function of (a) the configuration
    snapshot (criteria, rules, thresholds: its config_hash), (b) D when a condition has a
    relative date ("-3y"), and (c) the contact's values of the fields the conditions name.
    So each contact carries `inputs_hash`, an md5 of exactly these inputs: a nightly run
    recomputes only the contacts whose hash changed (new or changed contact, account, orders,
    or a fact that ages with D such as customer_status), and every contact when the
    configuration changed. A contact whose hash did not change would get the same numbers, so
    the incremental tables equal a full rebuild (tests/dbt/test_scoring_marts.py); a changed
    hash never does harm, it only costs a recomputation.

    SCORING_LOGIC_VERSION is part of every hash: change it with any change to what the
    predicates mean (macros/scoring/conditions.sql), so the next run recomputes everyone.
-#}

{% macro scoring_logic_version() -%}
    {{- return('conditions-v1') -}}
{%- endmacro %}


{#- Every persona criterion and profile rule, the conditions whose results are stored. -#}
{% macro stored_conditions() -%}
    {{- return(persona_criteria() + profile_rules()) -}}
{%- endmacro %}


{#- The configuration part of the hash: config_hash of the snapshot ('none' without one),
    the logic version, and D when a condition's value is a date relative to D. -#}
{% macro conditions_context(conditions) -%}
    {%- if not execute -%}
        {{- return('') -}}
    {%- endif -%}
    {%- set snapshot = run_query(
        "select config_hash from " ~ source('ops', 'config_snapshot')
    ).rows -%}
    {%- set parts = [scoring_logic_version(), snapshot[0][0] if snapshot else 'none'] -%}
    {%- if _has_relative_date(conditions) -%}
        {%- do parts.append(as_of_date_string()) -%}
    {%- endif -%}
    {{- return(parts | join('|')) -}}
{%- endmacro %}


{% macro _has_relative_date(conditions) -%}
    {%- set relative = [] -%}
    {%- for condition in conditions -%}
        {%- set value = condition['value'] -%}
        {%- set values = value if (value is iterable and value is not string) else [value] -%}
        {%- for item in values -%}
            {%- if modules.re.match('^[+-][0-9]+[dwmy]$', item | string) -%}
                {%- do relative.append(item) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{- return(relative | length > 0) -}}
{%- endmacro %}


{#- The sorted fields the conditions name, except best_persona (derived from the others). -#}
{% macro conditions_fields(conditions) -%}
    {%- set fields = [] -%}
    {%- for condition in conditions -%}
        {%- set column = condition_column('contact', condition) -%}
        {%- if condition['field'] != 'best_persona' and condition['field'] not in fields -%}
            {%- do fields.append(condition['field']) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(fields | sort) -}}
{%- endmacro %}


{#- md5 (as uuid) of the context and the row `alias`'s values of the conditions' fields. -#}
{% macro conditions_inputs_hash(alias, conditions) -%}
    {%- set fields = conditions_fields(conditions) -%}
    {%- set values = [scoring_string(conditions_context(conditions))] -%}
    {%- for field in fields -%}
        {%- do values.append(alias ~ '.' ~ field) -%}
    {%- endfor -%}
    cast(md5(cast(row({{ values | join(', ') }}) as text)) as uuid)
{%- endmacro %}


{#- The existing relation `identifier` next to the calling model, to compare with; none on a
    full build (--full-refresh), while parsing, or when it does not exist yet. -#}
{% macro stored_scoring_relation(identifier) -%}
    {%- if not execute or flags.FULL_REFRESH -%}
        {{- return(none) -}}
    {%- endif -%}
    {{- return(adapter.get_relation(
        database=this.database, schema=this.schema, identifier=identifier)) -}}
{%- endmacro %}


{#- The contacts an incremental scoring model computes this run: all of them on a full build,
    else those int_scoring_changed_contacts lists as new or changed. -#}
{% macro changed_contacts_filter(alias) -%}
    {%- if is_incremental() -%}
        {{ alias }}.contact_id in (
            select changed.contact_id from {{ ref('int_scoring_changed_contacts') }} as changed
            where not changed.is_gone
        )
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}


{#- Pre-hook of an incremental scoring model (strategy append): delete the rows of every
    contact this run recomputes or that is gone, in the transaction of the insert. Deleting
    rather than dbt's delete+insert by key also empties the rows a contact no longer gets
    (e.g. every persona removed from the configuration). -#}
{% macro delete_changed_contacts() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as stored
        using {{ ref('int_scoring_changed_contacts') }} as changed
        where stored.contact_id = changed.contact_id
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
