"""The data model above the store, spelled once: ref names, the task record, run liveness, identity.

The store (cafstore/store/) keeps objects, records and refs and knows
nothing about flows. What the refs are called and what a task record holds
is the contract between the runner, which writes them, and the client and
maintenance commands, which read them. docs/datamodel.md describes that
contract; this package is the code that spells it, so that no other module
builds or takes apart a ref name, builds a task record, decides whether a
run is still alive or looks up who the user is. The store must not import
it: dependencies point from the layers above down to the store.

Ref names are keys of one sorted table, so a prefix is a range scan. Run and
task numbers are zero-padded to ten digits so that key order is numeric
order (``latest_run`` is one reverse scan). Every ``*_ref`` builder has a
``parse_*_ref`` inverse that returns None for a name of another kind.

One module per part (``refs``, ``tags``, ``taskrecord``, ``liveness``); this
package re-exports every public name, so callers write ``schema.run_ref``.
"""

from cafstore.schema.liveness import (
    ENV_USER,
    PID_START_SLACK,
    closed_to_tasks,
    current_user,
    hostname,
    process_alive,
    process_facts,
    process_start_id,
    scheduler_alive,
)
from cafstore.schema.refs import (
    AUTHORIZED_PREFIX,
    CACHE_PREFIX,
    DAMAGED_PREFIX,
    DEFAULT_NAMESPACE_PREFIX,
    FAILED,
    FLOWS_PREFIX,
    LOST_FOUND_PREFIX,
    PINS_PREFIX,
    PRODUCTION_PREFIX,
    RUN_COUNTER_PREFIX,
    RUN_STATUSES,
    RUNNING,
    RUNS_PREFIX,
    SUCCEEDED,
    TASKS_PREFIX,
    authorized_ref,
    cache_ref,
    default_namespace_ref,
    flow_ref,
    lost_found_ref,
    parse_authorized_ref,
    parse_cache_ref,
    parse_default_namespace_ref,
    parse_flow_ref,
    parse_pin_ref,
    parse_production_ref,
    parse_run_counter,
    parse_run_ref,
    parse_task_ref,
    pin_ref,
    production_ref,
    read_ref,
    ref_problem,
    run_counter,
    run_of_ref,
    run_ref,
    runs_prefix,
    runs_using,
    task_ref,
    tasks_prefix,
)
from cafstore.schema.tags import (
    MAX_TAG_LENGTH,
    NAMESPACE_TAG_PREFIXES,
    SYSTEM_TAG_PREFIXES,
    check_user_tags,
    counts_as,
    system_tag_prefix,
    user_tag_problem,
)
from cafstore.schema.taskrecord import (
    EXCEPTION_FIELDS,
    TASK_FAILED,
    TASK_OK,
    TASK_RECORD_FIELDS,
    TASK_RUNNING,
    running_task_record,
    task_record,
)

__all__ = [
    "FLOWS_PREFIX",
    "RUNS_PREFIX",
    "TASKS_PREFIX",
    "PINS_PREFIX",
    "CACHE_PREFIX",
    "PRODUCTION_PREFIX",
    "AUTHORIZED_PREFIX",
    "DEFAULT_NAMESPACE_PREFIX",
    "RUN_COUNTER_PREFIX",
    "LOST_FOUND_PREFIX",
    "flow_ref",
    "parse_flow_ref",
    "runs_prefix",
    "run_ref",
    "parse_run_ref",
    "tasks_prefix",
    "task_ref",
    "parse_task_ref",
    "pin_ref",
    "parse_pin_ref",
    "cache_ref",
    "parse_cache_ref",
    "production_ref",
    "parse_production_ref",
    "authorized_ref",
    "parse_authorized_ref",
    "default_namespace_ref",
    "parse_default_namespace_ref",
    "lost_found_ref",
    "run_counter",
    "parse_run_counter",
    "runs_using",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "RUN_STATUSES",
    "DAMAGED_PREFIX",
    "ref_problem",
    "read_ref",
    "run_of_ref",
    "NAMESPACE_TAG_PREFIXES",
    "SYSTEM_TAG_PREFIXES",
    "MAX_TAG_LENGTH",
    "system_tag_prefix",
    "user_tag_problem",
    "check_user_tags",
    "counts_as",
    "TASK_OK",
    "TASK_FAILED",
    "EXCEPTION_FIELDS",
    "TASK_RECORD_FIELDS",
    "task_record",
    "TASK_RUNNING",
    "running_task_record",
    "ENV_USER",
    "current_user",
    "hostname",
    "PID_START_SLACK",
    "scheduler_alive",
    "closed_to_tasks",
    "process_alive",
    "process_facts",
    "process_start_id",
]
