{#- One row per key among bronze's copies of a record: the latest ingested copy wins
    (snapshots, profiles and rates are restated by later files), or the first one (facts). -#}
{% macro keep_one_copy(keys, keep='latest') -%}
    qualify row_number() over (
        partition by {{ keys | join(', ') }}
        order by _ingested_at {{ 'desc' if keep == 'latest' else 'asc' }}, _source_file {{ 'desc' if keep == 'latest' else 'asc' }}
    ) = 1
{%- endmacro %}
