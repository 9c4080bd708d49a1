{#-
    Persona criteria and profile rules (SPEC §2.3, §2.4) are field comparisons `field op value`
    stored as data in the configuration snapshot (ops.config_persona_criteria,
    ops.config_profile_rules; leadflow/scoring/snapshot.py). These macros read those rows when
    a model runs and write one SQL predicate per row, so the models evaluate any number of
    personas and rules in a single pass over the contacts, with no SQL to change when the YAML
    changes.

    The predicates mean exactly what the filter compiler's field comparisons mean
    (leadflow/segments/compiler.py; tests/leadflow/scoring compare the two):
    - two-valued: a comparison with a NULL field is false (`!=` and `not_in` too);
    - text `=`, `!=`, `in`, `not_in` are exact; `email` values are compared trimmed and
      lower-cased; `contains` / `starts_with` are ILIKE with `%`, `_` taken literally;
    - numbers and dates compare as such, `between` includes both ends; relative dates (`-3y`)
      resolve against `as_of`, months and years clamping the day to the month's end;
    - a timestamp compared with a date compares its UTC calendar date;
    - arrays: `contains X` = X is an element, `in` = shares an element, `not_in` = shares none,
      `is_null` = NULL or empty, `is_not_null` = at least one element.
-#}

-- These macros build SQL fragments in Jinja; the fragments' layout is not SQL layout.
-- noqa: disable=LT02

{#- Persona criteria in configuration order: persona by position, then criterion. -#}
{% macro persona_criteria() -%}
    {%- if not execute -%}
        {{- return([]) -}}
    {%- endif -%}
    {%- set query -%}
        select cast(json_build_object(
            'persona_id', criteria.persona_id,
            'persona_position', personas.position,
            'position', criteria.position,
            'field', criteria.field,
            'field_type', criteria.field_type,
            'op', criteria.op,
            'value', criteria.value,
            'weight', cast(criteria.weight as text)
        ) as text)
        from {{ source('ops', 'config_persona_criteria') }} as criteria
        inner join {{ source('ops', 'config_personas') }} as personas
            on criteria.persona_id = personas.persona_id
        order by personas.position, criteria.position
    {%- endset -%}
    {{- return(_scoring_json_rows(query)) -}}
{%- endmacro %}


{#- Profile rules in configuration order. -#}
{% macro profile_rules() -%}
    {%- if not execute -%}
        {{- return([]) -}}
    {%- endif -%}
    {%- set query -%}
        select cast(json_build_object(
            'rule_id', rules.rule_id,
            'position', rules.position,
            'field', rules.field,
            'field_type', rules.field_type,
            'op', rules.op,
            'value', rules.value,
            'points', cast(rules.points as text)
        ) as text)
        from {{ source('ops', 'config_profile_rules') }} as rules
        order by rules.position
    {%- endset -%}
    {{- return(_scoring_json_rows(query)) -}}
{%- endmacro %}


{#- Rows read when a model runs (none while parsing), one JSON text per row: dbt's agate
    conversion would otherwise guess column types from values ('none' becomes NULL). -#}
{% macro _scoring_json_rows(query) -%}
    {%- set rows = [] -%}
    {%- for row in run_query(query).rows -%}
        {%- do rows.append(fromjson(row[0])) -%}
    {%- endfor -%}
    {{- return(rows) -}}
{%- endmacro %}


{#- The fields a condition may name, by the type the comparison uses. The facts relation
    (int_contacts_enriched, plus best_persona for profile rules) has a column per field,
    named like the field (leadflow/config/fields.py; a test keeps the two lists equal). -#}
{% macro condition_fields() -%}
    {{- return({
        'contact_id': 'text', 'email': 'text', 'salutation': 'text', 'first_name': 'text',
        'last_name': 'text', 'language': 'text', 'country': 'text', 'position': 'text',
        'decision_role': 'enum', 'owner': 'text', 'source': 'text', 'tags': 'text_array',
        'interests': 'text_array', 'consent_status': 'enum', 'created_at': 'timestamp',
        'lifecycle_stage': 'enum', 'customer_status': 'enum', 'account_name': 'text',
        'industry': 'text', 'employee_count': 'integer', 'annual_revenue': 'numeric',
        'region': 'text', 'postcode': 'text', 'account_country': 'text',
        'best_persona': 'text', 'first_order_date': 'date', 'last_purchase_date': 'date',
        'order_count': 'integer', 'total_revenue': 'numeric', 'clv': 'numeric',
        'last_activity_at': 'timestamp', 'tenant_code': 'text',
    }) -}}
{%- endmacro %}


{#- The column of a condition's field on the row `alias`; an unknown field is an error. -#}
{% macro condition_column(alias, condition) -%}
    {%- set fields = condition_fields() -%}
    {%- set field = condition['field'] -%}
    {%- if field not in fields or fields[field] != condition['field_type'] -%}
        {{- exceptions.raise_compiler_error(
            "The configuration snapshot names the field '" ~ field ~ "' ("
            ~ condition['field_type'] ~ "), which this dbt project does not know; known: "
            ~ (fields | list | sort | join(', '))) -}}
    {%- endif -%}
    {{- return(alias ~ '.' ~ field) -}}
{%- endmacro %}


{#- `condition` (a snapshot row) as a predicate on the row aliased `alias`: never NULL, or,
    with two_valued=false (inside CASE WHEN, where NULL already means "not met"), possibly
    NULL where that is cheaper. -#}
{% macro condition_predicate(alias, condition, two_valued=true) -%}
    {%- set field = condition['field'] -%}
    {%- set column = condition_column(alias, condition) -%}
    {%- set field_type = condition['field_type'] -%}
    {%- set op = condition['op'] -%}
    {%- set value = condition['value'] -%}
    {%- if field_type == 'text_array' -%}
        {{- _array_predicate(column, op, value, two_valued) -}}
    {%- elif op == 'is_null' -%}
        ({{ column }} is null)
    {%- elif op == 'is_not_null' -%}
        ({{ column }} is not null)
    {%- elif field_type == 'timestamp' -%}
        {{- _never_null(_timestamp_comparison(column, op, value), two_valued) -}}
    {%- else -%}
        {{- _never_null(_scalar_comparison(column, field, field_type, op, value), two_valued) -}}
    {%- endif -%}
{%- endmacro %}


{% macro _never_null(predicate, two_valued) -%}
    {%- if two_valued -%}
        coalesce({{ predicate }}, false)
    {%- else -%}
        ({{ predicate }})
    {%- endif -%}
{%- endmacro %}


{#- A SQL string literal (quotes doubled; standard_conforming_strings = on). -#}
{% macro scoring_string(text) -%}
    '{{ text | string | replace("'", "''") }}'
{%- endmacro %}


{% macro _scalar_literal(field, field_type, value) -%}
    {%- if field_type in ('text', 'enum') -%}
        {#- The pool compares e-mail addresses trimmed and lower-cased (SPEC §2.1). -#}
        {{- scoring_string(value.strip().lower() if field == 'email' else value) -}}
    {%- elif field_type in ('integer', 'numeric') -%}
        {#- A bare literal: 50 is an integer (no per-row cast of an integer column), 0.5 and
            1e+20 are numeric, as the value written in the YAML. -#}
        {{- scoring_numeric_literal(value) -}}
    {%- elif field_type == 'date' -%}
        {{- scoring_date(value) -}}
    {%- elif field_type == 'boolean' -%}
        {{- 'true' if value else 'false' -}}
    {%- else -%}
        {{- exceptions.raise_compiler_error("no literal for field type " ~ field_type) -}}
    {%- endif -%}
{%- endmacro %}


{#- A date of the configuration as SQL: `2024-01-01` as is, `-3y`/`+1m`/`-2w`/`-30d` from
    as_of (PostgreSQL's month arithmetic clamps the day like leadflow.config.dates). -#}
{% macro scoring_date(text) -%}
    {%- set match = modules.re.match('^([+-])([0-9]+)([dwmy])$', text | string) -%}
    {%- if match -%}
        {%- set units = {'d': 'days', 'w': 'weeks', 'm': 'months', 'y': 'years'} -%}
        cast({{ as_of() }} + interval '{{ match.group(1) }}{{ match.group(2) }} {{ units[match.group(3)] }}' as date)
    {%- elif modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', text | string) -%}
        cast('{{ text }}' as date)
    {%- else -%}
        {{- exceptions.raise_compiler_error("not a date of the configuration: " ~ text) -}}
    {%- endif -%}
{%- endmacro %}


{% macro _scalar_comparison(column, field, field_type, op, value) -%}
    {%- set simple = {'=': '=', '!=': '<>', '<': '<', '<=': '<=', '>': '>', '>=': '>='} -%}
    {%- if op in simple -%}
        {{ column }} {{ simple[op] }} {{ _scalar_literal(field, field_type, value) }}
    {%- elif op in ('in', 'not_in') -%}
        {%- set items = [] -%}
        {%- for item in value -%}
            {%- do items.append(_scalar_literal(field, field_type, item)) -%}
        {%- endfor -%}
        {{ column }} {{ 'in' if op == 'in' else 'not in' }} ({{ items | join(', ') }})
    {%- elif op == 'between' -%}
        {{ column }} between {{ _scalar_literal(field, field_type, value[0]) }}
            and {{ _scalar_literal(field, field_type, value[1]) }}
    {%- elif op in ('contains', 'starts_with') -%}
        {#- ILIKE with '/' as the escape, as SQLAlchemy's autoescape writes it. -#}
        {%- set escaped = value | replace('/', '//') | replace('%', '/%') | replace('_', '/_') -%}
        {%- set pattern = ('%' if op == 'contains' else '') ~ escaped ~ '%' -%}
        {{ column }} ilike {{ scoring_string(pattern) }} escape '/'
    {%- else -%}
        {{- exceptions.raise_compiler_error(
            "operator " ~ op ~ " does not apply to " ~ field_type) -}}
    {%- endif -%}
{%- endmacro %}


{#- 00:00 UTC of a configuration date, as timestamptz. -#}
{% macro _day_start(text, days_later=0) -%}
    (cast({{ scoring_date(text) }} + {{ days_later }} as timestamp) at time zone 'UTC')
{%- endmacro %}


{#- A timestamp against a date, by its UTC calendar date (as ranges on the column). -#}
{% macro _timestamp_comparison(column, op, value) -%}
    {%- if op == 'between' -%}
        ({{ column }} >= {{ _day_start(value[0]) }} and {{ column }} < {{ _day_start(value[1], 1) }})
    {%- elif op == '=' -%}
        ({{ column }} >= {{ _day_start(value) }} and {{ column }} < {{ _day_start(value, 1) }})
    {%- elif op == '!=' -%}
        ({{ column }} < {{ _day_start(value) }} or {{ column }} >= {{ _day_start(value, 1) }})
    {%- elif op == '<' -%}
        {{ column }} < {{ _day_start(value) }}
    {%- elif op == '<=' -%}
        {{ column }} < {{ _day_start(value, 1) }}
    {%- elif op == '>' -%}
        {{ column }} >= {{ _day_start(value, 1) }}
    {%- elif op == '>=' -%}
        {{ column }} >= {{ _day_start(value) }}
    {%- else -%}
        {{- exceptions.raise_compiler_error("operator " ~ op ~ " does not apply to timestamps") -}}
    {%- endif -%}
{%- endmacro %}


{% macro _array_predicate(column, op, value, two_valued) -%}
    {%- if op == 'is_null' -%}
        ({{ column }} is null or cardinality({{ column }}) = 0)
    {%- elif op == 'is_not_null' -%}
        ({{ column }} is not null and cardinality({{ column }}) > 0)
    {%- elif op == 'contains' -%}
        {{- _never_null(scoring_string(value) ~ ' = any(' ~ column ~ ')', two_valued) -}}
    {%- elif op in ('in', 'not_in') -%}
        {%- set items = [] -%}
        {%- for item in value -%}
            {%- do items.append(scoring_string(item)) -%}
        {%- endfor -%}
        {%- set overlaps = column ~ ' && cast(array[' ~ (items | join(', ')) ~ '] as text[])' -%}
        {{- _never_null(overlaps if op == 'in' else 'not (' ~ overlaps ~ ')', two_valued) -}}
    {%- else -%}
        {{- exceptions.raise_compiler_error("operator " ~ op ~ " does not apply to arrays") -}}
    {%- endif -%}
{%- endmacro %}


{#- A number of the snapshot as a bare SQL literal, refusing anything but a number. -#}
{% macro scoring_numeric_literal(number) -%}
    {%- set text = number | string -%}
    {%- if not modules.re.match('^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$', text) -%}
        {{- exceptions.raise_compiler_error("not a number of the configuration: " ~ text) -}}
    {%- endif -%}
    {{- text -}}
{%- endmacro %}


{#- A decimal of the snapshot (weights, points; numeric as text) as a numeric literal. -#}
{% macro scoring_number(text) -%}
    {%- set literal = scoring_numeric_literal(text) -%}
    {{- literal if '.' in literal or 'e' in literal.lower() else literal ~ '.0' -}}
{%- endmacro %}


{#- Persona criteria grouped by persona, in configuration order: [(persona_id, [criterion])]. -#}
{% macro criteria_by_persona(criteria) -%}
    {%- set grouped = {} -%}
    {%- for criterion in criteria -%}
        {%- if criterion['persona_id'] not in grouped -%}
            {%- do grouped.update({criterion['persona_id']: []}) -%}
        {%- endif -%}
        {%- do grouped[criterion['persona_id']].append(criterion) -%}
    {%- endfor -%}
    {{- return(grouped) -}}
{%- endmacro %}


{#- Σ of `amount_key` over the conditions that hold for the row `alias` (numeric, 0 if none). -#}
{% macro sum_of_met(alias, conditions, amount_key) -%}
    {%- if conditions | length == 0 -%}
        cast(0 as numeric)
    {%- else -%}
        {%- for condition in conditions %}
            {%- set predicate = condition_predicate(alias, condition, two_valued=false) %}
            {{ '+ ' if not loop.first }}(case when {{ predicate }}
                then {{ scoring_number(condition[amount_key]) }} else 0 end)
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}


{#- The text of a condition's field for the audit trail (arrays as {a,b}). -#}
{% macro condition_field_text(alias, condition) -%}
    cast({{ condition_column(alias, condition) }} as text)
{%- endmacro %}
