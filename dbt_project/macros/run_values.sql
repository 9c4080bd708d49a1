{#-
    Values the models take from dbt's runtime (vars, run_started_at, modules), kept apart from
    the macros that write SQL with them: .sqlfluff lints offline with the jinja templater, which
    has no dbt runtime, and stubs exactly the macros in this file.
-#}

{#- The run's logical date D as YYYY-MM-DD: var('as_of'), else the environment variable
    LEADFLOW_DBT_AS_OF, else the UTC date the run started.

    leadflow.transform.dbt passes D in the environment: dbt hashes `--vars` into its
    partial-parsing state, so a new date on every run would mean a full parse on every run.
    The variable is read only while executing (`execute`), never while parsing, so dbt does
    not record it as a parse input either; while parsing, D does not matter (no SQL runs). -#}
{% macro as_of_date_string() -%}
    {%- set configured = var('as_of', none) -%}
    {%- if (configured is none or (configured | string | trim) == '') and execute -%}
        {%- set configured = env_var('LEADFLOW_DBT_AS_OF', '') -%}
    {%- endif -%}
    {%- if configured is none or (configured | string | trim) == '' -%}
        {{- return(run_started_at.strftime('%Y-%m-%d')) -}}
    {%- endif -%}
    {#- YAML turns an unquoted 2025-06-30 into a date; str() gives back the same text. -#}
    {%- set text = configured | string | trim -%}
    {%- set invalid = "var('as_of') must be a date as YYYY-MM-DD, got '" ~ text ~ "'" -%}
    {%- if not modules.re.match('^[1-9][0-9]{3}-(0[1-9]|1[0-2])-[0-3][0-9]$', text) -%}
        {{- exceptions.raise_compiler_error(invalid) -}}
    {%- endif -%}
    {#- Rebuild the date from its month: an impossible day such as 2025-02-30 comes out
        as another date (jinja cannot catch the ValueError strptime would raise). -#}
    {%- set year, month, day = text.split('-') | map('int') | list -%}
    {%- set first_of_month = modules.datetime.date(year, month, 1) -%}
    {%- set rebuilt = first_of_month + modules.datetime.timedelta(days=day - 1) -%}
    {%- if rebuilt.strftime('%Y-%m-%d') != text -%}
        {{- exceptions.raise_compiler_error(invalid) -}}
    {%- endif -%}
    {{- return(text) -}}
{%- endmacro %}


{#- The cut-off D + 1 day 00:00 UTC as text, e.g. '2025-07-01 00:00:00+00'. -#}
{% macro cutoff_string() -%}
    {%- set day = modules.datetime.datetime.strptime(as_of_date_string(), '%Y-%m-%d') -%}
    {%- set next_day = day + modules.datetime.timedelta(days=1) -%}
    {{- return(next_day.strftime('%Y-%m-%d') ~ ' 00:00:00+00') -}}
{%- endmacro %}


{#- Country -> tenant code (var `tenant_by_country`; see macros/tenant_code.sql). -#}
{% macro tenant_by_country() -%}
    {{- return(var('tenant_by_country')) -}}
{%- endmacro %}
