-- One cron fire; recording the same (schedule, fire_time) again keeps the first row.
INSERT INTO schedule_runs (schedule, fire_time, task_id, status, detail)
VALUES (%(schedule)s, %(fire_time)s, %(task_id)s, %(status)s, %(detail)s)
ON CONFLICT (schedule, fire_time) DO NOTHING
