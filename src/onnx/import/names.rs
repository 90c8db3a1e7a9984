//! Layer paths from ONNX node names: wick's exporter names a layer's first node after its spec
//! path (`layer1.0.conv1`) and the others `path/Op` or `path/Op:k`; torch.onnx names nodes by
//! their module scopes (`/layer1/layer1.0/conv1/Conv`), each scope either the module's full
//! path or its attribute name under the scope before it.

/// The layer path a node belongs to, or `None` for a node without a usable name.
pub fn layer_path(name: &str) -> Option<String> {
    let path = match name.strip_prefix('/') {
        Some(scoped) => torch_scope(scoped),
        None => wick_layer(name),
    };
    let clean: String = path.chars().filter(|c| !c.is_control()).collect();
    (!clean.is_empty()).then_some(clean)
}

/// `layer1.0.conv1/Transpose:2` -> `layer1.0.conv1`.
fn wick_layer(name: &str) -> String {
    let layer = name.split('/').next().unwrap_or_default();
    match layer.rsplit_once(':') {
        Some((base, k)) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) => base.to_string(),
        _ => layer.to_string(),
    }
}

/// `layer1/layer1.0/conv1/Conv` -> `layer1.0.conv1`: the last segment is the operator; each
/// scope that extends the path so far replaces it, any other is appended. A node outside any
/// module (`/Relu_1`, a functional call) is named after its operator (`relu_1`).
fn torch_scope(scoped: &str) -> String {
    let segments: Vec<&str> = scoped.split('/').collect();
    let scopes = &segments[..segments.len().saturating_sub(1)];
    if scopes.iter().all(|s| s.is_empty()) {
        return segments.last().map(|s| s.to_lowercase()).unwrap_or_default();
    }
    let mut path = String::new();
    for s in scopes.iter().filter(|s| !s.is_empty()) {
        if path.is_empty() || s.starts_with(&format!("{path}.")) {
            path = s.to_string();
        } else {
            path = format!("{path}.{s}");
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wick_and_torch_names_give_the_spec_path() {
        assert_eq!(layer_path("layer1.0.conv1").as_deref(), Some("layer1.0.conv1"));
        assert_eq!(layer_path("h.0.attn/Transpose:2").as_deref(), Some("h.0.attn"));
        assert_eq!(layer_path("h.0.attn:1").as_deref(), Some("h.0.attn"));
        assert_eq!(layer_path("/layer1/layer1.0/conv1/Conv").as_deref(), Some("layer1.0.conv1"));
        assert_eq!(layer_path("/features/features.0/Conv").as_deref(), Some("features.0"));
        assert_eq!(layer_path("/Relu_1").as_deref(), Some("relu_1"));
        assert_eq!(layer_path("").as_deref(), None);
    }
}
