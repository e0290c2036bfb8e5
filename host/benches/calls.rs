//! Criterion micro-benchmarks of what one connector call costs the host: loading a compiled
//! component from the disk cache, instantiating it (pooling allocator on and off), a no-op export
//! call, and a guest→host import call. `cargo bench -p bss-host --bench calls`; the `sandbox`
//! bench prints the whole table with the native baselines.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bss_host::capabilities::context::InstanceContext;
use bss_host::runtime::{Connector, Runtime, RuntimeConfig};
use criterion::{Criterion, criterion_group, criterion_main};

const FIXTURE: &str = env!("BSS_FIXTURE_WASM");
const CONNECTWISE: &str = env!("BSS_CONNECTWISE_WASM");

struct Loaded {
    runtime: Runtime,
    connector: Connector,
}

fn load(tokio: &tokio::runtime::Runtime, cache: &Path, file: &str, pooling: bool) -> Loaded {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.to_path_buf()),
        pooling,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let connector = tokio
        .block_on(runtime.load_file(Path::new(file)))
        .expect("load");
    Loaded { runtime, connector }
}

fn fixture_context(connector: &Connector, mode: &str, param: &str) -> Arc<InstanceContext> {
    let settings = [
        ("base-url", "http://127.0.0.1:9"),
        ("user", "bench"),
        ("api-key", "bench-key"),
        ("mode", mode),
        ("param", param),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Arc::new(
        InstanceContext::new(
            "bench",
            connector.manifest(),
            &settings,
            Default::default(),
            Default::default(),
        )
        .expect("fixture settings"),
    )
}

fn calls(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let cache = tempfile::tempdir().expect("temp dir");

    for (name, file) in [("fixture", FIXTURE), ("connectwise", CONNECTWISE)] {
        let warm = load(&tokio, cache.path(), file, true);
        c.bench_function(&format!("load {name} from the disk cache"), |b| {
            b.to_async(&tokio).iter(|| async {
                warm.runtime
                    .load_file(Path::new(file))
                    .await
                    .expect("cached load")
            })
        });
        assert_eq!(
            warm.runtime.compile_count(),
            1,
            "only the first load compiles"
        );
    }

    for pooling in [true, false] {
        let fixture = load(&tokio, cache.path(), FIXTURE, pooling);
        let context = fixture_context(&fixture.connector, "good", "");
        let on = if pooling { "on" } else { "off" };
        c.bench_function(&format!("instantiate fixture, pooling {on}"), |b| {
            b.to_async(&tokio)
                .iter(|| fixture.connector.instantiate(&context))
        });
        c.bench_function(
            &format!("instantiate + no-op call fixture, pooling {on}"),
            |b| {
                b.to_async(&tokio)
                    .iter(|| fixture.connector.lookup_choices(&context, "none"))
            },
        );
    }

    let connectwise = load(&tokio, cache.path(), CONNECTWISE, true);
    let empty = Arc::new(InstanceContext::empty("bench"));
    c.bench_function("instantiate + no-op call connectwise, pooling on", |b| {
        b.to_async(&tokio)
            .iter(|| connectwise.connector.lookup_choices(&empty, "none"))
    });

    // An import call is measured as the difference between a call making `n` imports and one
    // making none, so criterion times batches of imports directly.
    let fixture = load(&tokio, cache.path(), FIXTURE, true);
    let none = fixture_context(&fixture.connector, "import-loop", "0");
    let thousand = fixture_context(&fixture.connector, "import-loop", "1000");
    c.bench_function("1,000 guest→host import calls (settings.get)", |b| {
        b.to_async(&tokio).iter_custom(|iterations| {
            let (connector, none, thousand) =
                (fixture.connector.clone(), none.clone(), thousand.clone());
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let started = Instant::now();
                    connector
                        .activate(&thousand)
                        .await
                        .expect("call")
                        .expect("ok");
                    let with = started.elapsed();
                    let started = Instant::now();
                    connector.activate(&none).await.expect("call").expect("ok");
                    total += with.saturating_sub(started.elapsed());
                }
                total
            }
        })
    });
}

criterion_group!(benches, calls);
criterion_main!(benches);
