{#- Where a gold mart is exported as Parquet: the folder $HN_HOME/lake/gold/<model>/ -#}
{% macro gold_path(name) -%}
    {{ env_var('HN_HOME') }}/lake/gold/{{ name }}
{%- endmacro %}
