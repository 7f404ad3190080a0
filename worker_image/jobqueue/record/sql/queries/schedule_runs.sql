SELECT r.schedule, r.fire_time, r.status, r.task_id, r.replaced_task_id, r.missed, r.detail,
       r.handled_at
FROM schedule_runs r
WHERE r.schedule = %(schedule)s::text
  AND (%(statuses)s::text[] IS NULL OR r.status = ANY(%(statuses)s::text[]))
  AND (%(since)s::timestamptz IS NULL OR r.fire_time >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR r.fire_time < %(until)s::timestamptz)
ORDER BY r.fire_time DESC
LIMIT %(limit)s OFFSET %(offset)s
