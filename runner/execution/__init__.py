"""Running a flow: launch, scheduler, executors, the task process and its logs."""
