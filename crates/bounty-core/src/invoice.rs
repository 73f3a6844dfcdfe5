//! Invoices as Stripe reports them: Bounty keeps a copy of each invoice of
//! an account so the dashboard and the API can show it, and links it to
//! the charges of its period.

crate::stored_enum! {
    /// Where an invoice stands, in Stripe's words.
    pub enum InvoiceStatus("Stripe invoice status") {
        /// Being put together; not yet sent.
        Draft = "draft",
        /// Finalized and awaiting payment.
        Open = "open",
        /// Paid in full.
        Paid = "paid",
        /// Deemed unlikely to be paid.
        Uncollectible = "uncollectible",
        /// Cancelled.
        Void = "void",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_statuses_round_trip_and_others_are_named() {
        for s in InvoiceStatus::ALL {
            assert_eq!(s.as_str().parse::<InvoiceStatus>().unwrap(), *s);
        }
        let err = "pending".parse::<InvoiceStatus>().unwrap_err().to_string();
        assert_eq!(
            err,
            "`pending` is not a Stripe invoice status: expected `draft`, `open`, `paid`, `uncollectible` or `void`"
        );
    }
}
