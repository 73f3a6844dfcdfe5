//! `bounty models list|check`.

use std::time::Instant;

use anyhow::Context;
use bounty_models::config::Price;
use bounty_models::{GenerateRequest, Message, Role};

use crate::cli::ModelsCommand;
use crate::config::Config;

pub async fn run(cmd: ModelsCommand, config: &Config) -> anyhow::Result<()> {
    let registry = config.model_registry().context("invalid model configuration")?;
    match cmd {
        ModelsCommand::List { json } => {
            let infos: Vec<_> = registry.iter().map(|m| m.info()).collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&infos)?);
                return Ok(());
            }
            if infos.is_empty() {
                println!("no models configured: add [models.NAME] tables to bounty.toml (see README.md)");
                return Ok(());
            }
            println!("{:<24} {:<8} {:<40} PRICE", "NAME", "PROVIDER", "WHERE");
            for m in infos {
                let place = match &m.remote_model {
                    Some(model) => format!("{} ({model})", m.location),
                    None => m.location.clone(),
                };
                println!(
                    "{:<24} {:<8} {:<40} {}",
                    m.name,
                    m.provider.as_str(),
                    place,
                    price(&m.price)
                );
            }
            Ok(())
        }
        ModelsCommand::Check {
            name,
            prompt,
            max_tokens,
        } => {
            let model = registry.get(&name).with_context(|| {
                let known: Vec<_> = registry.iter().map(|m| m.name().to_owned()).collect();
                format!(
                    "no model named {name:?} is configured (configured: {})",
                    known.join(", ")
                )
            })?;
            println!("model {name} ({})", model.provider().as_str());
            let started = Instant::now();
            model
                .load()
                .await
                .with_context(|| format!("cannot load model {name}"))?;
            println!("loaded in {:.2} s", started.elapsed().as_secs_f64());
            let request = GenerateRequest {
                messages: vec![Message::new(Role::User, prompt)],
                max_tokens,
                temperature: 0.0,
                seed: 0,
                json_schema: None,
                tools: Vec::new(),
            };
            let generation = model
                .generate(request)
                .await
                .with_context(|| format!("model {name} failed to generate"))?;
            println!("output: {:?}", generation.text);
            println!(
                "tokens: {} prompt, {} completion, in {:.1} ms",
                generation.usage.prompt_tokens,
                generation.usage.completion_tokens,
                generation.latency.as_secs_f64() * 1000.0
            );
            if let Some(t) = generation.timings {
                let rate = |n: u64, d: std::time::Duration| {
                    if d.is_zero() {
                        0.0
                    } else {
                        n as f64 / d.as_secs_f64()
                    }
                };
                println!(
                    "speed: {:.1} tokens/s prompt processing, {:.1} tokens/s generation",
                    rate(generation.usage.prompt_tokens, t.prompt),
                    rate(generation.usage.completion_tokens, t.generation)
                );
            }
            let cost = bounty_models::price::cost(model.price(), generation.usage, generation.latency);
            println!("cost: {cost}");
            Ok(())
        }
    }
}

fn price(p: &Price) -> String {
    match p {
        Price::MillionTokens {
            input,
            output,
            cached_input,
            reasoning,
        } => {
            let mut line = format!("{input} in / {output} out per 1M tokens");
            if cached_input != input {
                line.push_str(&format!(", {cached_input} cached in"));
            }
            if reasoning != output {
                line.push_str(&format!(", {reasoning} reasoning"));
            }
            line
        }
        Price::CpuSecond { rate, threads } => format!("{rate} per CPU-second ({threads} threads)"),
        Price::GpuSecond { rate } => format!("{rate} per GPU-second"),
    }
}
