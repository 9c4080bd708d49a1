{#-
    The tenant a contact belongs to, from its country (var `tenant_by_country`, else
    var `default_tenant`). A stand-in: a later issue replaces it with the tenants'
    pool-alias filters (SPEC §2.10), which are the real rule.
-#}
{% macro tenant_code_for_country(country_expression) %}
    {%- set mapping = tenant_by_country() %}
    case upper({{ country_expression }})
    {%- for country in mapping | sort %}
        when '{{ country | upper }}' then '{{ mapping[country] }}'
    {%- endfor %}
        else '{{ var("default_tenant") }}'
    end
{%- endmacro %}
