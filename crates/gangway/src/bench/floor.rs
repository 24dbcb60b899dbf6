//! `gangway bench floor`: the http-score workload's HTTP exchanges per
//! session (create call, provider start, provider webhook, provider read,
//! customer webhook; same payloads, signatures and connections) against
//! a floor node (floor_node.rs), a process started as a Gangway node is
//! but whose handlers do no engine or database work. Its CPU per session
//! is what any server making these exchanges spends; `gangway bench`
//! divides Gangway's by it (`cpu_x_floor`).

use super::{Measured, setup_nodes};

#[derive(clap::Args)]
pub struct FloorArgs {
    /// Sessions to run after the warm-up.
    #[arg(long, default_value_t = 2000)]
    pub sessions: u64,
    /// Sessions in flight at once.
    #[arg(long, default_value_t = 50)]
    pub concurrency: u64,
    /// Added to every provider answer.
    #[arg(long, default_value_t = 0)]
    pub provider_latency_ms: u64,
}

/// Prints the floor's summary line, with the fields of `gangway bench`'s.
pub async fn run(args: FloorArgs) -> anyhow::Result<()> {
    let m = measure_floor(&args).await?;
    println!("{}", m.summary());
    Ok(())
}

/// Starts a floor node, measures it and stops it.
pub async fn measure(
    sessions: u64,
    concurrency: u64,
    provider_latency_ms: u64,
) -> anyhow::Result<Measured> {
    measure_floor(&FloorArgs {
        sessions,
        concurrency,
        provider_latency_ms,
    })
    .await
}

async fn measure_floor(args: &FloorArgs) -> anyhow::Result<Measured> {
    if args.sessions == 0 || args.concurrency == 0 {
        anyhow::bail!("--sessions and --concurrency must be at least 1");
    }
    let s = setup_nodes(
        "127.0.0.1:0",
        args.provider_latency_ms,
        None,
        // One process: a floor node knows only the sessions it created, and
        // the provider's webhooks go to every node in turn.
        1,
        None,
        None,
        None,
        true,
        "",
    )
    .await?;
    let m = super::measure(&s, args.sessions, args.concurrency, "floor").await;
    s.servers.stop();
    Ok(m)
}
