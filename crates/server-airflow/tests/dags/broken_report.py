"""A DAG file that does not import (its dependency is not installed): the Airflow server's
get_import_errors reports it."""
from datetime import datetime

import reporting_lib_that_is_not_installed  # noqa: F401
from airflow.sdk import dag


@dag(dag_id="broken_report", schedule=None, start_date=datetime(2025, 1, 1))
def broken_report():
    pass


broken_report()
