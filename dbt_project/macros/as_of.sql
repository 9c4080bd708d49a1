{#-
    The run's logical date and its cut-off (SPEC §2), in one place.

    A run for date D sees everything that happened before D + 1 day 00:00 UTC (the cut-off);
    ages are measured from the cut-off; "within the last N days" means a date in (D - N, D].
    D comes from `var('as_of')` (YYYY-MM-DD); unset, it is the UTC date the run started.
    Every model uses these macros rather than current_date or now(), so a run is reproducible.

    The values D and the cut-off come from run_values.sql; these macros turn them into SQL.
-#}

{#- D as a SQL date. -#}
{% macro as_of() -%}
    cast('{{ as_of_date_string() }}' as date)
{%- endmacro %}


{#- The cut-off as a SQL timestamptz: the first instant a run does NOT see. -#}
{% macro cutoff() -%}
    cast('{{ cutoff_string() }}' as timestamptz)
{%- endmacro %}


{#- True for a timestamptz the run sees (strictly before the cut-off). -#}
{% macro before_cutoff(timestamp_expression) -%}
    ({{ timestamp_expression }} < {{ cutoff() }})
{%- endmacro %}


{#- The calendar date (UTC) of a timestamptz, independent of the session's time zone. -#}
{% macro utc_date(timestamp_expression) -%}
    cast(({{ timestamp_expression }}) at time zone 'UTC' as date)
{%- endmacro %}


{#- True for a date in (D - days, D]: "within the last N days". -#}
{% macro within_last_days(date_expression, days) -%}
    ({{ date_expression }} > {{ as_of() }} - {{ days }} and {{ date_expression }} <= {{ as_of() }})
{%- endmacro %}


{#- Fractional days from a timestamptz to the cut-off (SPEC §2.4 decay ages). -#}
{% macro age_days(timestamp_expression) -%}
    (extract(epoch from ({{ cutoff() }} - ({{ timestamp_expression }}))) / 86400.0)
{%- endmacro %}
