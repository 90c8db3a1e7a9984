//! Choosing the device: the CPU, or a CUDA GPU when wick was built with the `cuda` feature.

use candle_core::Device;

/// What the user asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// A GPU when there is one, else the CPU (with a note saying why).
    #[default]
    Auto,
    Cpu,
    Cuda,
}

/// The device, and a note for the user when `Auto` fell back to the CPU.
pub fn select(choice: DeviceChoice) -> Result<(Device, Option<String>), String> {
    match choice {
        DeviceChoice::Cpu => Ok((Device::Cpu, None)),
        DeviceChoice::Cuda => cuda(),
        DeviceChoice::Auto => match cuda() {
            Ok((d, _)) => Ok((d, None)),
            // A build without CUDA has no GPU to miss: say nothing.
            Err(why) => {
                Ok((Device::Cpu, cfg!(feature = "cuda").then(|| format!("running on the CPU: {why}"))))
            }
        },
    }
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<(Device, Option<String>), String> {
    // cuda_if_available is an error, not the CPU, on a cuda build without a GPU. candle
    // attaches a backtrace when RUST_BACKTRACE is set; saying why there is no GPU needs none.
    Device::new_cuda(0).map(|d| (d, None)).map_err(|e| {
        let e = match e {
            candle_core::Error::WithBacktrace { inner, .. } => *inner,
            e => e,
        };
        format!("no usable CUDA GPU: {e}")
    })
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<(Device, Option<String>), String> {
    Err("this wick was built without CUDA support (rebuild with `--features cuda`)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_always_there_and_auto_never_fails() {
        assert!(select(DeviceChoice::Cpu).unwrap().0.is_cpu());
        let (device, note) = select(DeviceChoice::Auto).unwrap();
        // A CUDA build that falls back says why; a CPU-only build has nothing to explain.
        assert_eq!(device.is_cpu() && cfg!(feature = "cuda"), note.is_some());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_get_it() {
        let e = select(DeviceChoice::Cuda).unwrap_err();
        assert!(e.contains("--features cuda"), "{e}");
    }
}
