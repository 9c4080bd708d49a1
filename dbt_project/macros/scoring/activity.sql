{#-
    Activity decay (SPEC §2.4): an event contributes points × 0.5^(age_days / half-life),
    age_days being the fractional days from the event to the cut-off. Computed in double
    precision from epoch seconds (date_part), as leadflow.scoring.activity computes the
    incremental totals, so both give the same numbers.
-#}

{#- Fractional days from a timestamptz to the cut-off, as double precision. -#}
{% macro activity_age_days(timestamp_expression) -%}
    ((date_part('epoch', {{ cutoff() }}) - date_part('epoch', {{ timestamp_expression }})) / 86400.0)
{%- endmacro %}


{#- 0.5^(age_days / half_life_days) for an event at `timestamp_expression`. -#}
{% macro activity_decay(timestamp_expression, half_life_days) -%}
    power(0.5::float8, {{ activity_age_days(timestamp_expression) }} / {{ half_life_days }})
{%- endmacro %}
