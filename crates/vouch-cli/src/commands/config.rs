//! `vouch config`: the effective settings and where each comes from, or a complete default config file.

use clap::{Args, Subcommand};
use serde_json::json;

use crate::{
    config::{Setting, default_config_toml},
    context::Ctx,
    gateway_config::default_gateway_toml,
    node_config::default_node_toml,
};

#[derive(Debug, Clone, Copy, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Show every setting, its value and where it comes from (default, file, env, flag)
    Show,
    /// Print a complete config file with every key and its default (save it as <datadir>/config.toml; with --node,
    /// the operator node's, for `vouch node --config`; with --gateway, the gateway's, for `vouch gateway --config`)
    Default(DefaultArgs),
}

#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct DefaultArgs {
    /// Print the operator node's config file (node.toml) instead of the CLI's
    #[arg(long, conflicts_with = "gateway")]
    node: bool,
    /// Print the gateway's config file (gateway.toml) instead of the CLI's
    #[arg(long)]
    gateway: bool,
}

/// The default file `vouch config default` prints.
pub(crate) fn default_file(args: DefaultArgs) -> String {
    if args.node {
        default_node_toml()
    } else if args.gateway {
        default_gateway_toml()
    } else {
        default_config_toml()
    }
}

pub(crate) fn run(cmd: ConfigCommand, ctx: &Ctx) -> eyre::Result<()> {
    match cmd {
        ConfigCommand::Default(args) => {
            print!("{}", default_file(args));
            Ok(())
        }
        ConfigCommand::Show => {
            let s = &ctx.settings;
            let entry = |name: &str, value: String, source: String| (name.to_owned(), value, source);
            let shown = |setting: &Setting<std::path::PathBuf>| setting.value.display().to_string();
            let mut rows = vec![
                entry("datadir", shown(&s.datadir), s.datadir.source.to_string()),
                entry(
                    "config",
                    s.config_file.as_ref().map_or_else(|| "(none)".to_owned(), |p| p.display().to_string()),
                    String::new(),
                ),
                entry("rpc", s.rpc.value.clone(), s.rpc.source.to_string()),
                entry("addresses", shown(&s.addresses), s.addresses.source.to_string()),
            ];
            rows.push(match &s.from {
                Some(f) => entry("from", f.value.clone(), f.source.to_string()),
                None => entry("from", "(the only transaction key in <datadir>/keys)".into(), "default".into()),
            });
            rows.push(match &s.password_file {
                Some(p) => entry("password_file", p.value.display().to_string(), p.source.to_string()),
                None => entry("password_file", "(beside the keystore)".into(), "default".into()),
            });
            rows.push(entry("timeout", format!("{}s", s.timeout.value), s.timeout.source.to_string()));
            let json = json!(
                rows.iter()
                    .map(|(k, v, src)| (k.clone(), json!({ "value": v, "source": src })))
                    .collect::<serde_json::Map<_, _>>()
            );
            let text = rows
                .iter()
                .map(
                    |(k, v, src)| if src.is_empty() { format!("{k:<14} {v}") } else { format!("{k:<14} {v}  ({src})") },
                )
                .collect::<Vec<_>>()
                .join("\n");
            ctx.out.emit(&json, &text);
            Ok(())
        }
    }
}
