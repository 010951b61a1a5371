//! An ordered parallel map: work items go to a few threads, results come back in the items'
//! order, and only a bounded number are in flight, so memory stays bounded however long the
//! stream. Exports use it to read and compress on every core while writing front to back.

use std::collections::BTreeMap;

use crossbeam_channel::{bounded, unbounded};

use crate::error::{Error, Result};

/// Run `f` over `items` on `workers` threads and hand each result to `sink` in the items' order,
/// with at most `window` items between the feeder and the sink. The first error (from `items`,
/// `f` or `sink`) stops the feed and is returned once the workers are done.
pub fn ordered_map<I: Send, T: Send>(
    items: impl Iterator<Item = Result<I>>,
    workers: usize,
    window: usize,
    f: impl Fn(I) -> Result<T> + Sync,
    mut sink: impl FnMut(T) -> Result<()>,
) -> Result<()> {
    let window = window.max(1);
    let (job_tx, job_rx) = bounded::<(u64, I)>(window);
    let (done_tx, done_rx) = unbounded::<(u64, Result<T>)>();
    std::thread::scope(|scope| {
        for i in 0..workers.max(1) {
            let (job_rx, done_tx, f) = (job_rx.clone(), done_tx.clone(), &f);
            std::thread::Builder::new()
                .name(format!("sophon-export-{i}"))
                .spawn_scoped(scope, move || {
                    for (seq, item) in job_rx {
                        if done_tx.send((seq, f(item))).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|e| Error::io("sophon-export", e))?;
        }
        drop((job_rx, done_tx));

        let mut waiting: BTreeMap<u64, Result<T>> = BTreeMap::new();
        let (mut sent, mut next) = (0u64, 0u64);
        let mut failure: Option<Error> = None;
        // Hands every result that is next in order to the sink.
        let mut drain = |waiting: &mut BTreeMap<u64, Result<T>>, next: &mut u64| -> Result<()> {
            while let Some(r) = waiting.remove(next) {
                *next += 1;
                sink(r?)?;
            }
            Ok(())
        };
        for item in items {
            let item = match item {
                Ok(i) => i,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            while sent - next >= window as u64 {
                let Ok((seq, r)) = done_rx.recv() else { break };
                waiting.insert(seq, r);
                if let Err(e) = drain(&mut waiting, &mut next) {
                    failure = Some(e);
                    break;
                }
            }
            if failure.is_some() || job_tx.send((sent, item)).is_err() {
                break;
            }
            sent += 1;
        }
        drop(job_tx);
        while failure.is_none() && next < sent {
            let Ok((seq, r)) = done_rx.recv() else {
                failure = Some(Error::invalid("an export worker thread stopped"));
                break;
            };
            waiting.insert(seq, r);
            if let Err(e) = drain(&mut waiting, &mut next) {
                failure = Some(e);
            }
        }
        // Workers finish their current item and stop once the job channel is closed and drained.
        drop(done_rx);
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_arrive_in_order_and_errors_stop_the_feed() {
        let mut out = Vec::new();
        let items = (0..1000u64).map(Ok);
        ordered_map(
            items,
            4,
            8,
            |i| {
                if i % 7 == 0 {
                    std::thread::yield_now();
                }
                Ok(i * 2)
            },
            |r| {
                out.push(r);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(out, (0..1000).map(|i| i * 2).collect::<Vec<_>>());

        let mut seen = 0;
        let r = ordered_map(
            (0..1000u64).map(Ok),
            3,
            4,
            |i| if i == 500 { Err(Error::invalid("boom")) } else { Ok(i) },
            |_| {
                seen += 1;
                Ok(())
            },
        );
        assert!(r.is_err());
        assert_eq!(seen, 500, "everything before the failure, nothing after");
    }
}
