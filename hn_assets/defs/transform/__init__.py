"""Silver and gold: the dbt project as Dagster assets (dagster-dbt)."""
