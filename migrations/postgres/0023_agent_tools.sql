-- Agents that act (issue 17): each version of an agent gains its HTTP
-- tools, the knowledge sources it may search, how many tool calls a turn
-- may make, and whether it may hand a conversation off to a person.
-- Versions made before this migration read as they always ran: no tools,
-- no knowledge, 4 steps, no hand-off.
--
-- `tools` is JSON (bounty_core::tool::ToolSpec, an array) in a text
-- column, like every other JSON part of a version (model_route,
-- verifier_policy, routing), so one decoder reads both backends; nothing
-- queries inside it. Header values in it are sealed with the master keys
-- (`{"sealed": "v1.<key id>.…"}`), bound to account, agent, tool and
-- header: the database alone yields no usable secret.
alter table agent_versions add column tools text not null default '[]';
-- JSON array of knowledge source ids (`ks_…`) of the same account. Not a
-- foreign key: a deleted source simply stops matching at run time, and
-- old versions keep naming what they were made with.
alter table agent_versions add column knowledge text not null default '[]';
-- Tool calls per turn before the agent must answer (1 to 16, checked by
-- bounty_agents::spec).
alter table agent_versions add column max_steps integer not null default 4;
-- Offer the built-in `handoff` tool, and end as escalated (not failed)
-- when verification fails after the last cascade step.
alter table agent_versions add column handoff boolean not null default false;
