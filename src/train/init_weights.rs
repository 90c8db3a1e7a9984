//! `init_weights:`: initialisation schemes by glob over the learned parameters' keys, as a
//! PyTorch script's `model.apply(weights_init)` sets them after building the model. Drawn
//! from the run's seed, so a run is reproducible; applied in the order written, so a later
//! entry redraws what an earlier one covered too (`"**.weight": ..., "bn*.weight": ...`).

use crate::lower::Lowered;
use crate::ops::init_scheme::Scheme;
use crate::ops::ParamKind;
use crate::train::freeze::covers;

/// Redraw the parameters of `net` that `schemes` cover (the last covering entry's scheme for
/// each). Returns the globs that cover none of its learned parameters, for the caller to
/// refuse (a GAN's globs may cover either player's). A scheme that does not fit a tensor
/// (fans of a 1-d bias) is an error naming the glob and the key.
pub fn apply(net: &Lowered, schemes: &[(String, Scheme)]) -> Result<Vec<String>, String> {
    let store = net.params();
    let learned: Vec<(&str, Vec<usize>)> = store
        .entries()
        .iter()
        .filter(|e| e.kind == ParamKind::Weight)
        .map(|e| (e.key.as_str(), e.var.dims().to_vec()))
        .collect();
    let unmatched = schemes
        .iter()
        .filter(|(glob, _)| !learned.iter().any(|(k, _)| covers(glob, k)))
        .map(|(g, _)| g.clone());
    let unmatched = unmatched.collect();
    for (key, shape) in &learned {
        let Some((glob, scheme)) = schemes.iter().rev().find(|(glob, _)| covers(glob, key)) else { continue };
        let at = |e: String| format!("`init_weights: {glob}`: `{key}`: {e}");
        let dist = scheme.distribution(shape).map_err(at)?;
        store.redraw(key, dist).map_err(|e| at(e.to_string()))?;
    }
    Ok(unmatched)
}

/// The refusal of the first glob in `unmatched` (none of `nets`' learned parameters), naming
/// their top-level paths; `None` when every glob covered one.
pub fn unmatched_error(unmatched: &[String], nets: &[&Lowered]) -> Option<String> {
    let glob = unmatched.first()?;
    let roots: std::collections::BTreeSet<&str> = nets
        .iter()
        .flat_map(|n| n.params().entries())
        .filter(|e| e.kind == ParamKind::Weight)
        .filter_map(|e| e.key.split('.').next())
        .collect();
    Some(format!(
        "`init_weights: {glob}` covers no learned parameter; the top-level paths are {}",
        roots.into_iter().collect::<Vec<_>>().join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;
    use crate::{Model, Options};

    const SPEC: &str = "dim N = 2\nmodel M { input x: [N, 3, 6, 6]\n output y = x |> conv: Conv2d(64, 3) \
                        |> bn: BatchNorm2d |> Flatten |> fc: Linear(10) }";

    fn values(net: &Lowered, key: &str) -> Vec<f32> {
        net.params().get(key).unwrap().flatten_all().unwrap().to_vec1().unwrap()
    }

    fn build(seed: u64, schemes: &str) -> (Lowered, Result<Vec<String>, String>) {
        let model = Model::from_source("m.wick", SPEC, &Options::default()).unwrap();
        let net = model.build_seeded(&Device::Cpu, DType::F32, seed).unwrap();
        let parsed: Vec<(String, Scheme)> = schemes
            .split(';')
            .map(|pair| {
                let (glob, scheme) = pair.split_once('=').unwrap();
                (glob.trim().to_string(), Scheme::parse(scheme).unwrap())
            })
            .collect();
        let r = apply(&net, &parsed);
        (net, r)
    }

    #[test]
    fn globs_set_schemes_in_order_from_the_seed() {
        let dcgan = "**.weight = normal(0, 0.02); bn.weight = normal(1, 0.02); **.bias = zeros";
        let (net, unmatched) = build(3, dcgan);
        assert_eq!(unmatched.unwrap(), Vec::<String>::new());
        let conv = values(&net, "conv.weight");
        let mean = conv.iter().sum::<f32>() / conv.len() as f32;
        let std = (conv.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / conv.len() as f32).sqrt();
        assert!(mean.abs() < 0.003 && (std - 0.02).abs() < 0.002, "{mean} {std}");
        // The later `bn.weight` entry wins over `**.weight`.
        let bn = values(&net, "bn.weight");
        assert!(bn.iter().all(|v| (v - 1.0).abs() < 0.1), "{bn:?}");
        assert!(values(&net, "fc.bias").iter().all(|v| *v == 0.0));
        // Buffers are no parameters: the running variance stays 1.
        assert!(values(&net, "bn.running_var").iter().all(|v| *v == 1.0));
        // The same seed draws the same values; another seed others.
        assert_eq!(values(&build(3, dcgan).0, "fc.weight"), values(&net, "fc.weight"));
        assert_ne!(values(&build(4, dcgan).0, "fc.weight"), values(&net, "fc.weight"));
    }

    #[test]
    fn a_glob_that_covers_nothing_is_returned_and_fans_on_a_bias_are_an_error() {
        let (net, unmatched) = build(0, "**.weight = zeros; head.* = ones");
        assert_eq!(unmatched.as_deref().unwrap(), ["head.*".to_string()]);
        let refusal = unmatched_error(&unmatched.unwrap(), &[&net]).unwrap();
        assert_eq!(
            refusal,
            "`init_weights: head.*` covers no learned parameter; the top-level paths are bn, conv, fc"
        );
        let (_, err) = build(0, "**.bias = kaiming_uniform");
        let err = err.unwrap_err();
        assert!(err.starts_with("`init_weights: **.bias`: `conv.bias`: kaiming_uniform("), "{err}");
        assert!(err.contains("fewer than 2 dimensions"), "{err}");
    }
}
