use candle_core::{DType, Device, Tensor};

use super::config::{Augment, Crop, Erase};
use super::draw::Draw;
use super::image::Image;
use super::mix::cut_box;
use super::Augmenter;

/// A `c × h × w` image whose pixels are 1, 2, 3, ... (no two alike, none 0).
fn counting(c: usize, h: usize, w: usize) -> Vec<f32> {
    (1..=c * h * w).map(|v| v as f32).collect()
}

fn changed(spec: &Augment, pixels: &mut [f32], (c, h, w): (usize, usize, usize), key: u64) {
    let mut draw = Draw::keyed(&[key]);
    spec.example(&mut Image { pixels, c, h, w }, &mut draw);
}

#[test]
fn a_horizontal_flip_reverses_each_row_and_a_vertical_one_the_rows() {
    let mut p = counting(1, 2, 3);
    changed(&Augment { hflip: 1.0, ..Default::default() }, &mut p, (1, 2, 3), 0);
    assert_eq!(p, [3., 2., 1., 6., 5., 4.]);
    let mut p = counting(2, 3, 2);
    changed(&Augment { vflip: 1.0, ..Default::default() }, &mut p, (2, 3, 2), 0);
    assert_eq!(p, [5., 6., 3., 4., 1., 2., 11., 12., 9., 10., 7., 8.]);
    let mut p = counting(1, 2, 3);
    changed(&Augment { hflip: 0.0, vflip: 0.0, ..Default::default() }, &mut p, (1, 2, 3), 0);
    assert_eq!(p, counting(1, 2, 3));
}

#[test]
fn a_padded_crop_is_a_shifted_window_of_the_image_within_the_padding() {
    let spec = Augment { crop: Some(Crop { size: None, padding: 2 }), ..Default::default() };
    let (h, w) = (5, 7);
    let source = counting(1, h, w);
    let mut shifts = std::collections::BTreeSet::new();
    for key in 0..200 {
        let mut p = source.clone();
        changed(&spec, &mut p, (1, h, w), key);
        // Each kept pixel is the source's, moved by the same (dy, dx), at most the padding.
        let (mut dy, mut dx) = (None, None);
        for (i, v) in p.iter().enumerate().filter(|(_, v)| **v != 0.0) {
            let s = *v as usize - 1;
            let (y, x) = ((i / w) as i64, (i % w) as i64);
            let (sy, sx) = ((s / w) as i64, (s % w) as i64);
            assert_eq!(*dy.get_or_insert(sy - y), sy - y);
            assert_eq!(*dx.get_or_insert(sx - x), sx - x);
        }
        let (dy, dx) = (dy.unwrap(), dx.unwrap());
        assert!(dy.abs() <= 2 && dx.abs() <= 2, "shift ({dy}, {dx})");
        // Exactly the pixels that fall outside the source are zero.
        let kept = ((h as i64 - dy.abs()) * (w as i64 - dx.abs())) as usize;
        assert_eq!(p.iter().filter(|v| **v != 0.0).count(), kept);
        shifts.insert((dy, dx));
    }
    assert_eq!(shifts.len(), 25, "every shift in ±2 is drawn");
}

#[test]
fn the_same_seed_epoch_and_row_give_the_same_change_and_another_epoch_another() {
    let spec = Augment {
        crop: Some(Crop { size: Some(vec![6]), padding: 1 }),
        hflip: 0.5,
        rotate: 15.0,
        brightness: 0.3,
        noise: 0.1,
        erase: Some(Erase { p: 0.5, scale: (0.02, 0.33), ratio: (0.3, 3.3), value: 0.0 }),
        ..Default::default()
    }
    .checked()
    .unwrap();
    let augmenter = Augmenter { spec, seed: 7, classes: 0 };
    let x = Tensor::new(counting(1, 2 * 6, 6), &Device::Cpu).unwrap().reshape((2, 1, 6, 6)).unwrap();
    let y = Tensor::new(&[0i64, 1], &Device::Cpu).unwrap();
    let run = |rows: &[u32], epoch| {
        let (x, _) = augmenter.apply(&x, &y, rows, epoch, 0).unwrap();
        x.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    assert_eq!(run(&[3, 9], 1), run(&[3, 9], 1));
    assert_ne!(run(&[3, 9], 1), run(&[3, 9], 2));
    // A row's change depends on its row, not on its place in the batch.
    let (a, b) = (run(&[3, 9], 1), run(&[9, 3], 1));
    assert_ne!(a[..36], b[..36]);
    let other = Augmenter { seed: 8, ..augmenter.clone() };
    assert_ne!(
        other.apply(&x, &y, &[3, 9], 1, 0).unwrap().0.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        a
    );
}

#[test]
fn rotation_by_a_right_angle_turns_the_image_and_translation_moves_it() {
    let mut p = counting(1, 3, 3);
    let mut image = Image { pixels: &mut p, c: 1, h: 3, w: 3 };
    image.affine(std::f64::consts::FRAC_PI_2, (0.0, 0.0), 1.0);
    let turned: Vec<f32> = p.iter().map(|v| v.round()).collect();
    // Each output pixel comes from the source turned a quarter about the centre.
    assert_eq!(turned, [3., 6., 9., 2., 5., 8., 1., 4., 7.]);
    let mut p = counting(1, 2, 3);
    Image { pixels: &mut p, c: 1, h: 2, w: 3 }.affine(0.0, (1.0, 0.0), 1.0);
    assert_eq!(p, [0., 1., 2., 0., 4., 5.]);
    let mut p = counting(1, 2, 2);
    Image { pixels: &mut p, c: 1, h: 2, w: 2 }.affine(0.0, (0.0, 0.0), 1.0);
    assert_eq!(p, counting(1, 2, 2), "the identity leaves it as it was");
}

#[test]
fn brightness_scales_contrast_keeps_the_mean_and_noise_has_its_deviation() {
    let mut p = vec![1.0f32, 2.0, 3.0, 6.0];
    Image { pixels: &mut p, c: 1, h: 2, w: 2 }.brightness(1.5);
    assert_eq!(p, [1.5, 3.0, 4.5, 9.0]);
    let mut p = vec![1.0f32, 2.0, 3.0, 6.0];
    Image { pixels: &mut p, c: 1, h: 2, w: 2 }.contrast(2.0);
    assert_eq!(p, [-1.0, 1.0, 3.0, 9.0]);
    let mut p = vec![0f32; 20_000];
    Image { pixels: &mut p, c: 1, h: 100, w: 200 }.noise(0.5, &mut Draw::keyed(&[1]));
    let mean = p.iter().map(|v| f64::from(*v)).sum::<f64>() / p.len() as f64;
    let std = (p.iter().map(|v| (f64::from(*v) - mean).powi(2)).sum::<f64>() / p.len() as f64).sqrt();
    assert!(mean.abs() < 0.02 && (std - 0.5).abs() < 0.02, "mean {mean}, std {std}");
}

#[test]
fn erasing_fills_one_rectangle_of_the_asked_share_on_every_channel() {
    let erase = Erase { p: 1.0, scale: (0.1, 0.2), ratio: (0.5, 2.0), value: 0.0 };
    for key in 0..50 {
        let (c, h, w) = (2, 20, 30);
        let mut p = counting(c, h, w);
        Image { pixels: &mut p, c, h, w }.erase(&erase, &mut Draw::keyed(&[key]));
        let zeros: Vec<usize> = (0..h * w).filter(|i| p[*i] == 0.0).collect();
        let share = zeros.len() as f64 / (h * w) as f64;
        assert!((0.07..=0.23).contains(&share), "erased {share} of the image");
        // A rectangle: its bounding box is all zeros, and the second channel matches.
        let (ys, xs): (Vec<usize>, Vec<usize>) = zeros.iter().map(|i| (i / w, i % w)).unzip();
        let box_area = (ys.iter().max().unwrap() - ys.iter().min().unwrap() + 1)
            * (xs.iter().max().unwrap() - xs.iter().min().unwrap() + 1);
        assert_eq!(box_area, zeros.len());
        assert!(zeros.iter().all(|i| p[h * w + i] == 0.0));
    }
}

#[test]
fn mixup_mixes_images_and_targets_by_the_same_weight() {
    let spec = Augment { mixup: Some(0.4), ..Default::default() };
    let augmenter = Augmenter { spec, seed: 3, classes: 3 };
    let x = Tensor::new(&[1f32, 1., 1., 1., 0., 0., 0., 0.], &Device::Cpu)
        .unwrap()
        .reshape((2, 1, 2, 2))
        .unwrap();
    let y = Tensor::new(&[2i64, 0], &Device::Cpu).unwrap();
    let (mx, soft) = augmenter.apply(&x, &y, &[0, 1], 0, 5).unwrap();
    let (mx, soft) = (mx.flatten_all().unwrap().to_vec1::<f32>().unwrap(), soft.to_vec2::<f32>().unwrap());
    // The first image (all 1) keeps lam of itself; the second (all 0) takes 1 - lam of the first.
    let lam = mx[0];
    assert!(lam > 0.0 && lam < 1.0, "{lam}");
    assert!(mx[..4].iter().all(|v| *v == lam) && mx[4..].iter().all(|v| (*v - (1.0 - lam)).abs() < 1e-6));
    assert_eq!(soft[0], [1.0 - lam, 0.0, lam]);
    // The second (class 0) keeps lam of itself and takes 1 - lam of the first (class 2).
    assert!((soft[1][0] - lam).abs() < 1e-6 && (soft[1][2] - (1.0 - lam)).abs() < 1e-6);
    assert_eq!(
        soft.iter().map(|r| r.iter().sum::<f32>()).map(|s| (s - 1.0).abs() < 1e-6).collect::<Vec<_>>(),
        [true, true]
    );
}

#[test]
fn cutmix_pastes_a_box_and_weights_targets_by_its_area() {
    let spec = Augment { cutmix: Some(1.0), ..Default::default() };
    let augmenter = Augmenter { spec, seed: 11, classes: 2 };
    let (h, w) = (8, 8);
    let mut values = vec![1f32; h * w];
    values.extend(vec![0f32; h * w]);
    let x = Tensor::from_vec(values, (2, 1, h, w), &Device::Cpu).unwrap();
    let y = Tensor::new(&[1i64, 0], &Device::Cpu).unwrap();
    for batch in 0..20 {
        let (mx, soft) = augmenter.apply(&x, &y, &[0, 1], 0, batch).unwrap();
        let first = mx.get(0).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let pasted = first.iter().filter(|v| **v == 0.0).count() as f32 / (h * w) as f32;
        let soft = soft.to_vec2::<f32>().unwrap();
        // The first image's target: its own class by what is left of it, the other's by the box.
        assert!((soft[0][1] - (1.0 - pasted)).abs() < 1e-6 && (soft[0][0] - pasted).abs() < 1e-6);
    }
    let mut draw = Draw::keyed(&[0]);
    for _ in 0..100 {
        let ((top, left), (bh, bw)) = cut_box(draw.unit(), 7, 5, &mut draw);
        assert!(top + bh <= 7 && left + bw <= 5);
    }
}

#[test]
fn soft_targets_train_with_cross_entropy_and_count_as_their_likeliest_class() {
    use crate::train::loss::cross_entropy;
    use crate::train::objective::Metric;
    let d = Device::Cpu;
    let logits = Tensor::new(&[[2.0f32, 0.5, -1.0], [0.1, 0.2, 0.3]], &d).unwrap();
    let hard = Tensor::new(&[0i64, 2], &d).unwrap();
    let one_hot = Tensor::new(&[[1.0f32, 0., 0.], [0., 0., 1.]], &d).unwrap();
    let a = cross_entropy(&logits, &hard, 1, 0.1).unwrap().to_scalar::<f32>().unwrap();
    let b = cross_entropy(&logits, &one_hot, 1, 0.1).unwrap().to_scalar::<f32>().unwrap();
    assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    // Half of each: the mean of the two hard losses.
    let half = Tensor::new(&[[0.5f32, 0.5, 0.], [0., 0.5, 0.5]], &d).unwrap();
    let other = Tensor::new(&[1i64, 1], &d).unwrap();
    let mixed = cross_entropy(&logits, &half, 1, 0.0).unwrap().to_scalar::<f32>().unwrap();
    let l = |t: &Tensor| cross_entropy(&logits, t, 1, 0.0).unwrap().to_scalar::<f32>().unwrap();
    assert!((mixed - 0.5 * (l(&hard) + l(&other))).abs() < 1e-6);
    assert_eq!(
        Metric::TopK(1).count(&logits, &half.to_dtype(DType::F32).unwrap(), 1, None).unwrap(),
        (1.0, 2.0)
    );
}

#[test]
fn settings_out_of_range_are_refused_and_the_crop_keeps_the_size() {
    let bad = |a: Augment| a.checked().unwrap_err();
    assert!(bad(Augment { hflip: 1.5, ..Default::default() }).contains("`hflip` is a probability"));
    assert!(bad(Augment { mixup: Some(0.0), ..Default::default() }).contains("Beta's alpha"));
    assert!(bad(Augment { scale: Some((1.2, 0.8)), ..Default::default() }).contains("0 < low <= high"));
    let crop = Augment { crop: Some(Crop { size: Some(vec![6, 6]), padding: 1 }), ..Default::default() };
    assert!(crop.check_shape(&[1, 8, 8]).unwrap_err().contains("keeps the image's size"));
    assert!(crop.check_shape(&[1, 6, 6]).is_ok());
    assert!(crop.check_shape(&[64]).unwrap_err().contains("takes images [C, H, W]"));
}
