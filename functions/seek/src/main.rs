//! Cold start only: the runtime, logging, configuration, clients; then the Lambda loop.

use ct_shared::config::{self, Env, SeekConfig};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

fn main() -> Result<(), lambda_runtime::Error> {
    // Every vCPU the memory size grants, a part counting as one (1 thread at 1,024 MB, 2 at
    // 1,770 to 3,538); TOKIO_WORKER_THREADS, when set, is Tokio's own override. A bad memory
    // size is refused by name when the configuration is read.
    let env = Env::from_process();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if env.get("TOKIO_WORKER_THREADS").is_none() {
        let memory = config::memory_mb(&env).unwrap_or(config::DEFAULT_MEMORY_MB);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        runtime.worker_threads(config::worker_threads(memory, cores));
    }
    runtime.enable_all().build()?.block_on(run())
}

async fn run() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let (config, sdk) = ct_shared::aws::cold_start_or_exit("seek", SeekConfig::from_env).await;
    let seeker = seek::LiveSeeker::live(config, &sdk)?;
    let seeker = &seeker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        seek::serve(seeker, event)
    }))
    .await
}
