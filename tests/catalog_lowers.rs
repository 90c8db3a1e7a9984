//! Every catalog spec lowers, and the lowered model agrees with the static figures: the same
//! parameter and buffer counts, and outputs of the inferred shapes after a forward pass.

use candle_core::{DType, Device, Tensor};
use wick::{compile_file, Model, Options};

#[test]
fn every_catalog_spec_lowers_with_its_static_figures() {
    let mut specs: Vec<_> = std::fs::read_dir("specs")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wick"))
        .collect();
    specs.sort();
    assert!(specs.len() >= 3);
    for path in specs {
        let path = path.to_str().unwrap();
        let compiled = compile_file(path, &Options::default()).unwrap();
        let analysis = compiled.analysis.as_ref().unwrap();
        let (params, buffers) = (analysis.total_params(), analysis.buffers);
        let output_shapes: Vec<Vec<usize>> = {
            let g = compiled.graph.as_ref().unwrap();
            let b = g.bindings();
            g.outputs
                .iter()
                .map(|(_, t)| {
                    let ty = g.tensor_type(*t).unwrap();
                    ty.shape.iter().map(|d| d.eval(&b).unwrap() as usize).collect()
                })
                .collect()
        };
        let lowered = Model::from_compiled(compiled).unwrap().build(&Device::Cpu, DType::F32).unwrap();
        let count = |buffer: bool| -> u64 {
            let entries = lowered.params().entries().iter();
            let kind = |e: &&wick::lower::params::Entry| (e.kind == wick::ops::ParamKind::Buffer) == buffer;
            entries.filter(kind).map(|e| e.var.elem_count() as u64).sum()
        };
        assert_eq!((count(false), count(true)), (params, buffers), "{path}");
        let inputs: Vec<Tensor> = lowered
            .inputs()
            .iter()
            .map(|d| Tensor::zeros(d.dims.as_slice(), DType::F32, &Device::Cpu).unwrap())
            .collect();
        let outputs = lowered.forward(&inputs, false).unwrap();
        let shapes: Vec<Vec<usize>> = outputs.iter().map(|t| t.dims().to_vec()).collect();
        assert_eq!(shapes, output_shapes, "{path}");
    }
}
