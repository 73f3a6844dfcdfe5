-- Bounty's own time in the step that made a tool call: from the model's
-- answer to the next model request, less the tools' time. Set on the last
-- call of each step; null on rows written before it was recorded.
alter table tool_calls add column step_overhead_us bigint;
