//! `bounty outcomes reverse`: the operator's goodwill reversal.
//!
//! The only way to reverse a charge as goodwill: the API refuses it to
//! every customer key (403 `operator_only`). The operator's name and reason
//! go on the outcome's receipt and on its reversing transfers.

use bounty_billing::settle::OutcomeError;
use bounty_core::Actor;
use bounty_store::Store;

use super::BadInput;
use super::billing::require_account;
use crate::cli::OutcomesCommand;

pub async fn run(cmd: OutcomesCommand, store: &Store) -> anyhow::Result<()> {
    match cmd {
        OutcomesCommand::Reverse {
            account,
            outcome,
            operator,
            reason,
            json,
        } => {
            require_account(store, account).await?;
            let operator = Actor::operator(&operator).map_err(|e| BadInput(format!("--operator: {e}")))?;
            let reason = reason.trim();
            if reason.is_empty() || reason.chars().count() > 500 || reason.contains('\0') {
                return Err(BadInput("--reason must be 1 to 500 characters".to_owned()).into());
            }
            let applied =
                match bounty_billing::settle::goodwill_reversal(store, account, outcome, operator, reason)
                    .await
                {
                    Ok(applied) => applied,
                    Err(OutcomeError::NotFound) => {
                        return Err(BadInput(format!("account {account} has no outcome {outcome}")).into());
                    }
                    Err(OutcomeError::NotAllowed(why) | OutcomeError::NotApplicable(why)) => {
                        return Err(BadInput(format!("cannot reverse {outcome}: {why}")).into());
                    }
                    Err(OutcomeError::Store(e)) => return Err(e.into()),
                };
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "id": applied.outcome.id.to_string(),
                        "status": applied.outcome.status.as_str(),
                        "from": applied.from.as_str(),
                        "reason": applied.reason,
                    })
                );
            } else {
                println!(
                    "{} {} -> {}: {}",
                    applied.outcome.id,
                    applied.from.as_str(),
                    applied.outcome.status.as_str(),
                    applied.reason
                );
            }
            Ok(())
        }
    }
}
