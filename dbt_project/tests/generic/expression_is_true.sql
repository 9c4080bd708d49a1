{#-
    Fails for every row where `expression` is not true (false or NULL): a rule between
    columns of one row, e.g. "a lead has no orders".
-#}
{% test expression_is_true(model, expression) %}

    select *
    from {{ model }}
    where not coalesce(({{ expression }}), false)

{% endtest %}
