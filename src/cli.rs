//! The command line: what each command does, and its flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use bounty_core::{AccountId, ApiKeyId, ApiKeyMode, Timestamp};
use clap::{Args, Parser, Subcommand};

/// Bounty runs AI agents on support tickets and bills only the work that
/// succeeded: resolved outcomes become compute units in an append-only
/// ledger; a failure costs the customer nothing.
///
/// With no configuration it stores everything in ./bounty-data/bounty.db
/// (SQLite). For production set DATABASE_URL=postgres://… and run any
/// number of `bounty serve` processes against it.
#[derive(Debug, Parser)]
#[command(name = "bounty", version, propagate_version = true)]
#[command(
    after_help = "Configuration: defaults, then bounty.toml (or --config), then BOUNTY_<SECTION>__<KEY> \
environment variables, then flags. See README.md for every key.\n\n\
Quick start:\n  bounty accounts create \"Acme\"      # prints an API key, once\n  \
bounty serve                        # http://127.0.0.1:8080\n  \
curl -H \"Authorization: Bearer $KEY\" localhost:8080/v1/account"
)]
pub struct Cli {
    /// A TOML config file (default: ./bounty.toml when present). Also BOUNTY_CONFIG.
    #[arg(long, global = true, env = "BOUNTY_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// The database: sqlite://PATH or postgres://USER:PASS@HOST/DB.
    /// Overrides DATABASE_URL and the config file.
    #[arg(long, global = true, value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Bounty's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API.
    ///
    /// Creates and migrates the database if needed, then serves /v1, /healthz,
    /// /readyz, /metrics and /openapi.json. SIGTERM or Ctrl-C stops accepting
    /// connections and lets in-flight requests finish (up to
    /// server.shutdown_grace_ms).
    Serve(ServeArgs),

    /// Run a task worker: claim queued tasks, run their agents, record the
    /// results. Run as many as you like against one Postgres database.
    ///
    /// Each claim is a lease renewed while the task runs; if a worker dies
    /// its tasks are claimed again once their leases expire, and only one
    /// attempt can ever complete a task. SIGTERM or Ctrl-C stops claiming
    /// and lets running tasks finish (up to worker.shutdown_grace_ms).
    ///
    /// Example: DATABASE_URL=postgres://… bounty worker --concurrency 8
    Worker(WorkerArgs),

    /// The models agents can use: list them, or load one and try it.
    #[command(subcommand)]
    Models(ModelsCommand),

    /// An account's usage: outcomes, CU, charges, inference cost and gross
    /// margin, by day or by agent.
    ///
    /// Example: bounty usage --account acct_01J… --group-by agent
    Usage(UsageArgs),

    /// Reports from recorded history: the pricing-model comparison.
    #[command(subcommand)]
    Report(ReportCommand),

    /// Prepaid compute-unit credits (operator commands).
    #[command(subcommand)]
    Credits(CreditsCommand),

    /// Outcomes: reverse a charge as goodwill (operator commands).
    ///
    /// A goodwill reversal is the operator's decision alone: no customer
    /// key can make one through the API (it gets 403 `operator_only`).
    #[command(subcommand)]
    Outcomes(OutcomesCommand),

    /// An account's plan and monthly spending cap (operator commands).
    #[command(subcommand)]
    Billing(BillingCommand),

    /// The transactional outbox of external effects (meter events, their
    /// reversals, Stripe customers): inspect it, retry parked rows.
    #[command(subcommand)]
    Outbox(OutboxCommand),

    /// Helpdesk integrations (operator commands): turn a disabled one's
    /// replies back on.
    #[command(subcommand)]
    Integrations(IntegrationsCommand),

    /// Stripe: create the billing meter, product and price Bounty bills on.
    #[command(subcommand)]
    Stripe(StripeCommand),

    /// Master keys that seal secrets at rest.
    #[command(subcommand)]
    Secrets(SecretsCommand),

    /// Dashboard users: create one, reset a password, list an account's
    /// (operator commands).
    #[command(subcommand)]
    Users(UsersCommand),

    /// Apply database migrations, then exit.
    ///
    /// `serve` also migrates at start. On Postgres an advisory
    /// lock makes concurrent migrations safe: each applies exactly once.
    Migrate,

    /// Create and list accounts (operator commands).
    #[command(subcommand)]
    Accounts(AccountsCommand),

    /// Create, list and revoke an account's API keys (operator commands).
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeysCommand),

    /// Distillation: export an agent's verified teacher traces, the
    /// dataset that fine-tunes a small local student model.
    #[command(subcommand)]
    Distill(DistillCommand),

    /// Knowledge sources: re-index their stored documents.
    #[command(subcommand)]
    Knowledge(KnowledgeCommand),
}

/// `knowledge` subcommands.
#[derive(Debug, Subcommand)]
pub enum KnowledgeCommand {
    /// Cut every stored document of the chosen sources into chunks again,
    /// and write only what changed (operator command).
    #[command(
        long_about = "Cut every stored document of the chosen knowledge sources into chunks again, \
and write only what changed: a document whose text and chunks are what is stored is left alone, \
a changed one keeps the rows (and embeddings) of its unchanged chunks. Running it twice changes \
nothing the second time, and says so. Without --account every account's sources are re-indexed; \
with --source only that one. A progress bar is drawn on stderr when it is a terminal.",
        after_help = "Examples:\n  \
bounty knowledge reindex\n  \
bounty knowledge reindex --account acct_01J… --source ks_01J…\n\n\
Exit status: 0 on success, 2 for a bad flag or an unknown account or source; 1 for anything else."
    )]
    Reindex(KnowledgeReindexArgs),
}

/// `knowledge reindex` flags.
#[derive(Debug, Args)]
pub struct KnowledgeReindexArgs {
    /// Only this account's sources.
    #[arg(long, value_name = "ACCOUNT_ID")]
    pub account: Option<String>,
    /// Only this source.
    #[arg(long, value_name = "SOURCE_ID")]
    pub source: Option<String>,
}

/// `serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 0.0.0.0:8080 (default 127.0.0.1:8080).
    /// Port 0 picks a free port, printed at start.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Do not run a task worker in this process (run `bounty worker`
    /// processes instead). Same as worker.in_serve = false.
    #[arg(long)]
    pub no_worker: bool,
    /// Seed a demo account (marked as such), a dashboard user, agents on a
    /// tiny local model, an integration and a few tickets (sent and then
    /// solved or reopened by a simulated helpdesk), and print how to log
    /// in. Without secrets.master_keys the demo keeps its own master key in
    /// ./bounty-data. Safe to repeat: the second time only the password is
    /// renewed.
    #[arg(long)]
    pub demo: bool,
}

/// `worker` flags.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Tasks run at once (default worker.concurrency).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,
}

/// `report` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Revenue and gross margin of the recorded work under cost-plus,
    /// value-based (the plan as charged) and BYOK pricing.
    #[command(
        long_about = "Compare three ways of pricing the same recorded work of an account (or one of \
its agents) over a period, in the plan's currency:\n\n\
  cost-plus    the inference we paid for, plus --markup-bp\n\
  value-based  what the plan actually charged for resolved outcomes\n\
  BYOK         --platform-fee per resolved outcome; the customer pays inference\n\n\
and the three lines the case for outcome pricing rests on: the raw inference cost (every decided \
task on the agent's frontier model, the route's last, at its recorded average cost per answering \
call), the cost-plus price of that raw cost, and the delivered cost after routing, caching and \
distillation (every call we paid for, rejected cascade steps, judges and shadow students \
included). Nothing is estimated but the raw cost, and the report says how.",
        after_help = "Examples:\n  bounty report margins --account acct_01J…\n  \
bounty report margins --account acct_01J… --agent support --from 2026-11-01T00:00:00Z \\\n      \
--to 2026-12-01T00:00:00Z --markup-bp 2500 --platform-fee 0.08 --json"
    )]
    Margins(ReportMarginsArgs),
}

/// `report margins` flags.
#[derive(Debug, Args)]
pub struct ReportMarginsArgs {
    #[arg(long, value_name = "ACCOUNT_ID")]
    pub account: AccountId,
    /// Only this agent (by name); default every agent of the account.
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,
    /// Start, RFC 3339 (default: the start of this month).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: Option<Timestamp>,
    /// End, RFC 3339, exclusive (default: now).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to: Option<Timestamp>,
    /// Cost-plus markup over inference cost, in basis points (3000 = 30%).
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub markup_bp: u32,
    /// BYOK platform fee per resolved outcome, a decimal amount of the
    /// plan's currency (default: the plan's `byok_fee` at its CU price, or
    /// 0.10 when the plan has none).
    #[arg(long, value_name = "AMOUNT")]
    pub platform_fee: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `usage` flags.
#[derive(Debug, Args)]
pub struct UsageArgs {
    /// The account.
    #[arg(long, value_name = "ACCOUNT_ID")]
    pub account: AccountId,
    /// Start, RFC 3339 (default: the start of this month).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// End, RFC 3339, exclusive (default: now).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// `day` or `agent`.
    #[arg(long, default_value = "day")]
    pub group_by: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `outcomes` subcommands.
#[derive(Debug, Subcommand)]
pub enum OutcomesCommand {
    /// Reverse a resolved outcome's charge as goodwill, inside its window
    /// or its policy's goodwill days. The receipt records the operator and
    /// the reason; the reversing transfers cancel the meter event inside
    /// Stripe's 24 h, else credit the customer's balance.
    ///
    /// Example: bounty outcomes reverse --account acct_01J… out_01J… \
    ///     --operator alice --reason "wrong answer, customer complained"
    Reverse {
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: AccountId,
        /// The outcome (`out_…`).
        #[arg(value_name = "OUTCOME_ID")]
        outcome: bounty_core::OutcomeId,
        /// Who decides: your name, kept on the receipt (default: $USER).
        #[arg(long, env = "USER", value_name = "NAME")]
        operator: String,
        /// Why, in words the customer will read on the receipt.
        #[arg(long)]
        reason: String,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `credits` subcommands.
#[derive(Debug, Subcommand)]
pub enum CreditsCommand {
    /// Grant prepaid CU: resolved outcomes draw them down before anything
    /// is metered.
    ///
    /// Example: bounty credits grant --account acct_01J… 100 --memo "pilot"
    Grant {
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: AccountId,
        /// CU to grant, as a decimal (`100`, `12.5`).
        cu: String,
        /// Why (shown with the grant).
        #[arg(long)]
        memo: Option<String>,
    },
    /// Show the balance and the grants.
    Show {
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: AccountId,
    },
}

/// `billing` subcommands.
#[derive(Debug, Subcommand)]
pub enum BillingCommand {
    /// Show the plan, cap, credit balance and this month's spend.
    Show {
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: AccountId,
    },
    /// Set the plan from a JSON file, e.g. {"name": "pro", "kind": "value",
    /// "cu_per_outcome": {"ticket.resolved": 1000}, "price_per_cu":
    /// {"micros": 900000, "currency": "USD"}, "included_cu": 0} (CU in
    /// milli-CU). It applies from the next charge.
    SetPlan {
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: AccountId,
        /// The plan's JSON file.
        #[arg(long, value_name = "PATH")]
        file: std::path::PathBuf,
    },
    /// Set the monthly spending cap (in the plan's currency), or remove it
    /// with --none. At the cap new tasks are refused with 402.
    ///
    /// Example: bounty billing set-cap --account acct_01J… --monthly 500.00 --alerts 50,80,100
    SetCap {
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: AccountId,
        /// The cap, as a decimal amount (`500.00`).
        #[arg(long, conflicts_with = "none")]
        monthly: Option<String>,
        /// Remove the cap.
        #[arg(long)]
        none: bool,
        /// Percents of the cap at which an alert is recorded.
        #[arg(long, value_delimiter = ',', default_value = "50,80,100")]
        alerts: Vec<u32>,
    },
    /// Compare the ledger's metered CU per account and UTC day with
    /// Stripe's meter event summaries, and print every difference. Exits 0
    /// when they agree, 1 when any day differs (for cron), 2 on bad flags.
    ///
    /// Charges reversed inside 24 h are cancelled in Stripe and count on
    /// neither side; those reversed later stay on Stripe's meter and are
    /// credited to the customer's balance, so they count on both. Rows of
    /// the outbox not yet sent are shown as "in flight". Stripe aggregates
    /// asynchronously: reconcile closed days.
    ///
    /// Example: bounty billing reconcile --from 2026-11-01 --to 2026-12-01
    Reconcile {
        /// First UTC day (YYYY-MM-DD), included.
        #[arg(long, value_name = "DAY")]
        from: chrono::NaiveDate,
        /// Last UTC day (YYYY-MM-DD), excluded.
        #[arg(long, value_name = "DAY")]
        to: chrono::NaiveDate,
        /// Print every account and day compared, not only differences.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `stripe` subcommands.
#[derive(Debug, Subcommand)]
pub enum StripeCommand {
    /// Create or validate, in the Stripe account of `stripe.secret_key`:
    /// the billing meter `bounty_compute_units` (sum of milli-CU per
    /// customer), the product `bounty_compute_units`, and a monthly metered
    /// price for the default plan's price per CU. Then queue a subscription
    /// for every account that has none.
    ///
    /// Safe to run any number of times: what exists is found and checked,
    /// not created again. An object that exists but does not fit (a meter
    /// that counts instead of sums, say) is reported and left alone; the
    /// exit status is then 1. Prices for other plans' prices are created
    /// when a subscription first needs them.
    ///
    /// Example: BOUNTY_STRIPE__SECRET_KEY=sk_test_… bounty stripe setup
    Setup {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a dashboard user of an account, or with --operator an
    /// operator of the console at /ops (not tied to any account). Without
    /// --password-stdin a strong password is generated and printed once.
    ///
    /// Examples:
    ///   bounty users create --account acct_01J… --email ops@acme.com --role owner
    ///   bounty users create --operator --email me@bounty.example
    Create {
        /// The account the user belongs to (not with --operator).
        #[arg(
            long,
            value_name = "ACCOUNT_ID",
            required_unless_present = "operator",
            conflicts_with = "operator"
        )]
        account: Option<AccountId>,
        /// Create an operator: signs in at /ops, sees every account with
        /// its inference cost and margin. Not a user of any account.
        #[arg(long)]
        operator: bool,
        /// The login email (case-insensitive; unique among users, and
        /// among operators).
        #[arg(long)]
        email: String,
        /// `owner`, `member` or `viewer` (read-only); not with --operator.
        #[arg(long, default_value = "member")]
        role: String,
        /// Read the password from the first line of stdin (at least 12
        /// characters) instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password and end the user's (or with --operator the
    /// operator's) sessions. Without --password-stdin a new one is
    /// generated and printed once. With --link, print a one-time link
    /// instead, for its holder to choose a password in a browser: it works
    /// once, for an hour, and nothing changes until it is used.
    ///
    /// Examples:
    ///   bounty users reset-password --account acct_01J… --email ops@acme.com
    ///   bounty users reset-password --operator --email me@bounty.example --link
    ResetPassword {
        /// The user's account (not with --operator; optional with --link,
        /// where the email alone names the user).
        #[arg(
            long,
            value_name = "ACCOUNT_ID",
            required_unless_present_any = ["operator", "link"],
            conflicts_with = "operator"
        )]
        account: Option<AccountId>,
        /// An operator's password, not an account user's.
        #[arg(long)]
        operator: bool,
        #[arg(long)]
        email: String,
        /// Read the new password from the first line of stdin (at least 12
        /// characters) instead of generating one.
        #[arg(long, conflicts_with = "link")]
        password_stdin: bool,
        /// Print a one-time reset link (a path of the dashboard) instead of
        /// setting a password.
        #[arg(long)]
        link: bool,
    },
    /// List an account's users (never a password).
    List {
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: AccountId,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `secrets` subcommands.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Print a new random master key as `ID:BASE64`, for
    /// `secrets.master_keys` (BOUNTY_SECRETS__MASTER_KEYS). To rotate, put
    /// the new one first and keep the old one after a comma: secrets
    /// sealed under the old key still open, new ones use the new key.
    ///
    /// Example: BOUNTY_SECRETS__MASTER_KEYS="$(bounty secrets new-key)" bounty serve
    NewKey,
}

/// `outbox` subcommands.
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List rows, newest first (all accounts).
    List {
        /// Only `pending`, `sent` or `failed` rows.
        #[arg(long, value_parser = ["pending", "sent", "failed"])]
        status: Option<String>,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Put a parked (`failed`) row back to `pending`, due now.
    ///
    /// Example: bounty outbox retry obx_…
    Retry {
        /// The row's id (`obx_…`).
        id: bounty_core::OutboxId,
        /// Send it under a fresh idempotency key, its tries counted from
        /// zero: for a row parked because Stripe replays a saved 500 for its
        /// key. Check in Stripe first that the object was not made.
        #[arg(long)]
        new_key: bool,
    },
}

/// `integrations` subcommands.
#[derive(Debug, Subcommand)]
pub enum IntegrationsCommand {
    /// Turn a disabled integration's replies back on (after its helpdesk
    /// answered 410 Gone, say) and send the replies parked meanwhile,
    /// oldest first. The helpdesk is pinged with the integration's reply
    /// credentials first (it needs the master keys, `BOUNTY_SECRETS__MASTER_KEYS`);
    /// if it does not answer 2xx, the integration stays off and the
    /// command exits 1.
    ///
    /// Example: bounty integrations enable --account acct_… int_…
    Enable {
        /// The account that owns it (`acct_…`).
        #[arg(long)]
        account: bounty_core::AccountId,
        /// The integration (`int_…`).
        id: bounty_core::IntegrationId,
        /// Turn it on without the test ping.
        #[arg(long)]
        no_ping: bool,
    },
}

/// `models` subcommands.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List the configured models: provider, where they run, and price.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Load a model and run one short generation: prints the load time,
    /// the tokens and the speed. Exits non-zero if the model cannot run.
    ///
    /// Example: bounty models check tiny --prompt "Once upon a time"
    Check {
        /// The model's name in the configuration.
        name: String,
        /// What to ask.
        #[arg(long, default_value = "Say hello in one short sentence.")]
        prompt: String,
        /// Most tokens to generate.
        #[arg(long, default_value_t = 32)]
        max_tokens: u32,
    },
}

/// `accounts` subcommands.
#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Create an account and its first API key. The key is printed once:
    /// only its hash is stored, so it can never be shown again.
    ///
    /// Example: bounty accounts create "Acme Corp" --key-name production
    Create {
        /// The account's display name.
        name: String,
        /// A label for the first key.
        #[arg(long, default_value = "default")]
        key_name: String,
        /// `live` or `test` (test keys are never billed).
        #[arg(long, default_value = "live", value_parser = parse_mode)]
        mode: ApiKeyMode,
        /// Print JSON instead of text (for scripts: `| jq -r .api_key.secret`).
        #[arg(long)]
        json: bool,
    },
    /// List accounts, newest first.
    List(ListArgs),
}

/// `api-keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Create another key for an account, or with --operator a `bk_op_`
    /// key of an operator for /v1/ops/*; the key is printed once.
    ///
    /// Examples:
    ///   bounty api-keys create --account acct_01J… --name ci --mode test
    ///   bounty api-keys create --operator --email me@bounty.example --name console
    Create {
        /// The account the key acts for (not with --operator).
        #[arg(
            long,
            value_name = "ACCOUNT_ID",
            required_unless_present = "operator",
            conflicts_with = "operator"
        )]
        account: Option<AccountId>,
        /// Create an operator key (`bk_op_…`) for the operator --email.
        #[arg(long, requires = "email")]
        operator: bool,
        /// The operator's email (with --operator).
        #[arg(long, requires = "operator")]
        email: Option<String>,
        /// A label for the key.
        #[arg(long, default_value = "default")]
        name: String,
        /// `live` or `test`.
        #[arg(long, default_value = "live", value_parser = parse_mode)]
        mode: ApiKeyMode,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List an account's keys (prefix, created, last used, revoked).
    List {
        /// The account whose keys to list.
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: AccountId,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Revoke a key: it stops authenticating at once. Revoking twice is harmless.
    ///
    /// Example: bounty api-keys revoke --account acct_01J… key_01J…
    Revoke {
        /// The account the key belongs to.
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: AccountId,
        /// The key's id (`key_…`, as listed), not the key itself.
        key: ApiKeyId,
    },
}

/// `distill` subcommands.
#[derive(Debug, Subcommand)]
pub enum DistillCommand {
    /// Write an agent's verified-resolved traces as chat-format JSONL, and
    /// a manifest next to it.
    #[command(
        long_about = "Write the teacher traces of one agent as chat-format JSONL: the dataset for \
fine-tuning a small student model on what worked.\n\n\
A trace is a task of the agent (any version) whose outcome was verified `resolved` and decided \
in [--since, --until). Failed and reversed outcomes are never exported. Each line is \
{\"messages\": [{\"role\", \"content\"}, …], \"metadata\": {\"task_id\", \"outcome_id\", \
\"agent_version\", \"model\", \"decided_at\"}}, the messages ending with the assistant's answer. \
A task whose transcript is missing or is not such a conversation is skipped and counted, with \
the reason, in the manifest.\n\n\
The manifest (FILE.manifest.json, beside FILE.jsonl) records the window, the counts per model \
and agent version, the skips, and the file's size and sha256. Both files are written to a \
temporary file and renamed into place, so an interrupted export never leaves a partial file \
under the final name. A progress bar is drawn on stderr when it is a terminal.",
        after_help = "Examples:\n  \
bounty distill export --account acct_01J… --agent support\n  \
bounty distill export --account acct_01J… --agent support \\\n      \
--since 2026-10-01T00:00:00Z --until 2026-11-01T00:00:00Z --out october.jsonl --json\n\n\
Exit status: 0 on success, 2 for a bad flag, an unknown account or agent, or an output file \
that exists without --force; 1 for anything else."
    )]
    Export(DistillExportArgs),
    /// Compare the shadow student's verifier pass rate with the teacher's.
    #[command(
        long_about = "Show, for one agent, every model's verifier pass rate: the route's models on \
live tasks, and the shadow student (routing.shadow) on the share of live tasks it ran beside them. \
The teacher is the route's last model, the one a cascade ends on. Shadow runs never change an \
outcome or a charge; this is where their results are read.",
        after_help = "Examples:\n  bounty distill status --account acct_01J… --agent support\n  \
bounty distill status --account acct_01J… --agent support --json"
    )]
    Status(DistillAgentArgs),
    /// Put the shadow student first in the agent's cascade, if it has earned it.
    #[command(
        long_about = "Promote the agent's shadow student: when it has at least --min-samples shadow \
verdicts, the teacher as many, and the student's pass rate is at most --margin-bp basis points \
under the teacher's, a new agent version is made with the student first in the route, a cascade \
(so a rejected student answer still escalates to the teacher) and no shadow. Otherwise nothing \
changes and the command says why.",
        after_help = "Examples:\n  bounty distill promote --account acct_01J… --agent support\n  \
bounty distill promote --account acct_01J… --agent support --margin-bp 100 --min-samples 200\n\n\
Exit status: 0 when promoted, 1 when the student has not earned it (or on an error), 2 for a bad \
flag or an unknown account or agent."
    )]
    Promote(DistillPromoteArgs),
}

/// The agent `distill status` reads.
#[derive(Debug, Args)]
pub struct DistillAgentArgs {
    #[arg(long, value_name = "ACCOUNT_ID")]
    pub account: AccountId,
    /// The agent's name.
    #[arg(long, value_name = "NAME")]
    pub agent: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `distill promote` flags.
#[derive(Debug, Args)]
pub struct DistillPromoteArgs {
    #[command(flatten)]
    pub agent: DistillAgentArgs,
    /// How far under the teacher's pass rate the student's may be, in
    /// basis points (200 = 2 percentage points).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub margin_bp: u32,
    /// Verdicts the student and the teacher each need first.
    #[arg(long, default_value_t = 50)]
    pub min_samples: u64,
}

/// `distill export` flags.
#[derive(Debug, Args)]
pub struct DistillExportArgs {
    /// The account whose agent to export.
    #[arg(long, value_name = "ACCOUNT_ID")]
    pub account: AccountId,
    /// The agent's name (its traces of every version are exported).
    #[arg(long, value_name = "NAME")]
    pub agent: String,
    /// Outcomes decided at or after this time, RFC 3339 (default: 30
    /// days before --until).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<Timestamp>,
    /// Outcomes decided before this time, RFC 3339 (default: now).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<Timestamp>,
    /// The JSONL file to write (default: ./distill-NAME-YYYY-MM-DD.jsonl,
    /// today's UTC date). The manifest is written beside it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace the output file and its manifest if they exist.
    #[arg(long)]
    pub force: bool,
    /// Print the manifest as JSON instead of the summary line.
    #[arg(long)]
    pub json: bool,
}

/// Pagination and output flags of list commands.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// How many to show (1 to 100).
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Continue after this id (the `next` printed by the previous page).
    #[arg(long, value_name = "ID")]
    pub cursor: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| bounty_core::clock::truncate_to_micros(t.with_timezone(&chrono::Utc)))
        .map_err(|e| format!("not an RFC 3339 time such as 2026-11-01T00:00:00Z ({e})"))
}

fn parse_mode(s: &str) -> Result<ApiKeyMode, String> {
    s.parse()
        .map_err(|e: bounty_core::api_key::BadMode| e.to_string())
}
