-- What `ward report` computes for a period, as SQL over the same SQLite store: the equivalent
-- the report bench times it against. :from and :to are the period (Unix milliseconds); :first
-- and :last the appendix's seqs. Every query reads what the report reads, and the appendix's
-- rows come out whole, as the report writes them.

-- 3. Requests filed in the period, each with its fields and final state.
SELECT r.request_id, r.actor, r.resource, json_extract(r.details, '$.role'), r.reason,
       json_extract(r.details, '$.ticket'), r.occurred_at,
       (SELECT e.type FROM audit_events e
         WHERE e.request_id = r.request_id AND e.occurred_at >= :from AND e.occurred_at < :to
           AND e.type IN ('grant.scheduled', 'grant.activated', 'approval.denied', 'request.cancelled', 'request.lapsed')
         ORDER BY e.seq DESC LIMIT 1) AS final,
       (SELECT group_concat(a.actor, ' ') FROM audit_events a
         WHERE a.request_id = r.request_id AND a.type = 'approval.granted') AS approvers
  FROM audit_events r
 WHERE r.type = 'request.created' AND r.occurred_at >= :from AND r.occurred_at < :to;

-- 3. Grants with an event in the period, each with its window and final state.
SELECT grant_id, subject, resource, type, json_extract(details, '$.starts_at'), json_extract(details, '$.expires_at'), occurred_at
  FROM (SELECT grant_id, subject, resource, type, details, occurred_at,
               ROW_NUMBER() OVER (PARTITION BY grant_id ORDER BY seq DESC) AS n
          FROM audit_events
         WHERE grant_id IS NOT NULL AND occurred_at >= :from AND occurred_at < :to
           AND type IN ('grant.scheduled', 'grant.activated', 'grant.extended', 'grant.released', 'grant.revoked', 'grant.expired'))
 WHERE n = 1;

-- 5. Exceptions: refused self-approvals, automatic approvals, break-glass, short reasons.
SELECT seq, actor, request_id, reason FROM audit_events
 WHERE type = 'access.denied' AND occurred_at >= :from AND occurred_at < :to
   AND json_extract(details, '$.action') IN ('approve', 'deny') AND subject = actor AND request_id IS NOT NULL;
SELECT seq, request_id FROM audit_events
 WHERE type = 'approval.granted' AND occurred_at >= :from AND occurred_at < :to AND json_extract(details, '$.automatic');
SELECT seq, type, subject, grant_id FROM audit_events
 WHERE type IN ('breakglass.used', 'breakglass.reviewed', 'breakglass.overdue') AND occurred_at >= :from AND occurred_at < :to;
SELECT seq, actor, reason FROM audit_events
 WHERE type = 'request.created' AND occurred_at >= :from AND occurred_at < :to
   AND length(reason) < 20 AND json_extract(details, '$.ticket') IS NULL;

-- 6. Revocation: every end, and the lag's distribution.
SELECT grant_id, type, json_extract(details, '$.due_at'), json_extract(details, '$.processed_at'), json_extract(details, '$.lag_ms')
  FROM audit_events
 WHERE type IN ('grant.expired', 'grant.released', 'grant.revoked') AND occurred_at >= :from AND occurred_at < :to;
SELECT COUNT(*), MAX(json_extract(details, '$.lag_ms')) FROM audit_events
 WHERE type = 'grant.expired' AND occurred_at >= :from AND occurred_at < :to;
SELECT json_extract(details, '$.lag_ms') AS lag FROM audit_events
 WHERE type = 'grant.expired' AND occurred_at >= :from AND occurred_at < :to
 ORDER BY lag LIMIT 1 OFFSET (SELECT COUNT(*) * 95 / 100 FROM audit_events WHERE type = 'grant.expired' AND occurred_at >= :from AND occurred_at < :to);

-- 7. Uses per grant.
SELECT grant_id, SUM(COALESCE(json_extract(details, '$.count'), 1)), MIN(occurred_at), MAX(occurred_at),
       SUM(json_extract(details, '$.action') IN ('logs.search', 'logs.tail'))
  FROM audit_events
 WHERE type = 'access.used' AND grant_id IS NOT NULL AND occurred_at >= :from AND occurred_at < :to
 GROUP BY grant_id;

-- 9 and 10. Findings and changes.
SELECT seq, type, json_extract(details, '$.finding_id'), json_extract(details, '$.rule'), occurred_at FROM audit_events
 WHERE type LIKE 'finding.%' AND occurred_at >= :from AND occurred_at < :to;
SELECT seq, type, actor, occurred_at FROM audit_events
 WHERE type IN ('policy.changed', 'policy.rejected', 'config.changed', 'directory.reloaded', 'token.created', 'token.revoked', 'audit.key_changed')
   AND occurred_at >= :from AND occurred_at < :to;

-- 11. The appendix: every event from the start checkpoint to the end one, whole.
SELECT * FROM audit_events WHERE seq >= :first AND seq <= :last ORDER BY seq;
