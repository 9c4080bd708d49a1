{#-
    Fails for every combination of `combination_of_columns` that occurs more than once:
    the key test for tables with a composite key (dbt_utils has one; leadflow cannot fetch
    packages, so this is its own).
-#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

{%- set columns = combination_of_columns | join(', ') %}

    select
        {{ columns }},
        count(*) as occurrences
    from {{ model }}
    group by {{ columns }}
    having count(*) > 1

{% endtest %}
