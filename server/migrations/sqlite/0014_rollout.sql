-- Push A/B tests with a rollout (POST /v1/notify `rollout`): the variants
-- go to a test share first; the other devices' deliveries wait
-- (`awaiting_winner`, no payload) until the decision, which sends them the
-- winner only on a significant verdict, else the baseline.
-- `rollout` is the plan (JSON: the share, the metric, each arm's copy and a
-- batch's data, to render the rest from), `rollout_decide_ms` when to
-- decide, `rollout_decision` what was decided and why (JSON; NULL: not yet).
ALTER TABLE notifications ADD COLUMN rollout TEXT;
ALTER TABLE notifications ADD COLUMN rollout_decide_ms INTEGER;
ALTER TABLE notifications ADD COLUMN rollout_decision TEXT;
CREATE INDEX notifications_rollout_due ON notifications (rollout_decide_ms)
    WHERE rollout_decide_ms IS NOT NULL AND rollout_decision IS NULL;
