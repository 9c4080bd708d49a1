{#-
    Use a model's custom schema verbatim. dbt's default prefixes it with the target schema
    (`public_marts`); leadflow's contract is the schemas `staging`, `intermediate` and `marts`
    (SPEC §3.1), which BI tools and tenant views name directly.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
