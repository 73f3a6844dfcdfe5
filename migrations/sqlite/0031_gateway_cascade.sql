-- Gateway cascades (issue 18): a gateway model with a verifier tries its
-- route's models in order and escalates when the verifier rejects an
-- answer.
--
-- `role`: `answer` for a call that answered (or failed to answer) the
-- client's request, `judge` for a call a judge verifier made to check one.
-- `verdict`: the verifier's decision on an answer (`pass` or `fail`),
-- null when no verifier ran on it. Both are copied to the task's model
-- calls when its outcome is reported.
alter table gateway_calls add column role text not null default 'answer'
    constraint gateway_calls_role_check check (role in ('answer', 'judge'));
alter table gateway_calls add column verdict text
    constraint gateway_calls_verdict_check check (verdict in ('pass', 'fail'));
