//! `signoff webhook add|list|remove|deliveries|redeliver`: outbound
//! notifications, over the API (admins).

use std::io::Write;

use chrono::Utc;
use signoff_api::{
    DeliveryParams, DeliveryStatusView, DeliveryView, EventName, FormatView, NewWebhook,
    WebhookView,
};
use signoff_client::Client;

use super::{Outcome, UsageError};
use crate::cli::{DeliveryStatusArg, WebhookCommand, WebhookFormatArg};
use crate::output::{self, BAD, BOLD, DIM, GOOD, WAITING};

/// Runs one webhook command.
pub async fn run(client: &Client, command: WebhookCommand, json: bool) -> anyhow::Result<Outcome> {
    match command {
        WebhookCommand::Add(args) => {
            let created = client
                .create_webhook(&NewWebhook {
                    url: args.url,
                    events: parse_events(&args.events)?,
                    secret: args.secret,
                    format: match args.format {
                        WebhookFormatArg::Json => FormatView::Json,
                        WebhookFormatArg::Slack => FormatView::Slack,
                    },
                })
                .await?;
            if json {
                output::json(&created)?;
            } else {
                let mut out = anstream::stdout().lock();
                writeln!(out, "Webhook {BOLD}{}{BOLD:#}", created.webhook.id)?;
                writeln!(out, "  url     {}", created.webhook.url)?;
                writeln!(out, "  events  {}", created.webhook.events.join(", "))?;
                writeln!(out, "  secret  {}", created.secret)?;
                writeln!(
                    out,
                    "{DIM}the secret is shown once: the receiver checks Signoff-Signature with it{DIM:#}"
                )?;
            }
        }
        WebhookCommand::List => {
            let list = client.webhooks().await?;
            if json {
                output::json(&list)?;
            } else if list.webhooks.is_empty() {
                anstream::println!("No webhooks.");
            } else {
                let mut out = anstream::stdout().lock();
                for hook in &list.webhooks {
                    print_hook(&mut out, hook)?;
                }
            }
        }
        WebhookCommand::Remove(args) => {
            client.delete_webhook(args.id).await?;
            if json {
                output::json(&serde_json::json!({"id": args.id, "removed": true}))?;
            } else {
                anstream::println!("Removed webhook {}", args.id);
            }
        }
        WebhookCommand::Deliveries(args) => {
            let list = client
                .deliveries(&DeliveryParams {
                    webhook_id: args.webhook,
                    status: args.status.map(|status| match status {
                        DeliveryStatusArg::Pending => DeliveryStatusView::Pending,
                        DeliveryStatusArg::Delivered => DeliveryStatusView::Delivered,
                        DeliveryStatusArg::Dead => DeliveryStatusView::Dead,
                    }),
                    request_id: args.request,
                    limit: Some(args.limit),
                })
                .await?;
            if json {
                output::json(&list)?;
            } else if list.deliveries.is_empty() {
                anstream::println!("No deliveries.");
            } else {
                let mut out = anstream::stdout().lock();
                for delivery in &list.deliveries {
                    print_delivery(&mut out, delivery)?;
                }
            }
        }
        WebhookCommand::Redeliver(args) => {
            let delivery = client.redeliver(args.id).await?;
            if json {
                output::json(&delivery)?;
            } else {
                anstream::println!("Delivery {} is queued again", delivery.id);
            }
        }
    }
    Ok(Outcome::Success)
}

fn parse_events(names: &[String]) -> Result<Vec<EventName>, UsageError> {
    names
        .iter()
        .map(|name| {
            serde_json::from_value(serde_json::Value::String(name.trim().to_owned())).map_err(
                |_| {
                    UsageError::new(format!(
                        "--events: unknown event '{name}' (known: {})",
                        signoff_core::webhook::known_events().join(", ")
                    ))
                },
            )
        })
        .collect()
}

fn print_hook(out: &mut impl Write, hook: &WebhookView) -> anyhow::Result<()> {
    let format = match hook.format {
        FormatView::Json => "json",
        FormatView::Slack => "slack",
    };
    writeln!(
        out,
        "{BOLD}{}{BOLD:#}  {}  {DIM}{format}; {}{DIM:#}",
        hook.id,
        hook.url,
        hook.events.join(",")
    )?;
    Ok(())
}

fn print_delivery(out: &mut impl Write, delivery: &DeliveryView) -> anyhow::Result<()> {
    let now = Utc::now();
    let (style, state) = match delivery.status {
        DeliveryStatusView::Delivered => (GOOD, "delivered".to_owned()),
        DeliveryStatusView::Dead => (BAD, "dead".to_owned()),
        DeliveryStatusView::Pending => (
            WAITING,
            match delivery.next_attempt_at {
                Some(at) => format!("pending, next try {}", output::relative(at, now)),
                None => "pending".to_owned(),
            },
        ),
    };
    let last = match (&delivery.last_status, &delivery.last_error) {
        (_, Some(error)) => format!("; last: {error}"),
        (Some(status), None) => format!("; last: HTTP {status}"),
        (None, None) => String::new(),
    };
    writeln!(
        out,
        "{}  {style}{state}{style:#}  {}  request {}  {DIM}{} tries{last}{DIM:#}",
        delivery.id, delivery.event, delivery.request_id, delivery.attempts
    )?;
    Ok(())
}
