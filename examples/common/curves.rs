//! Small helpers the examples share: a log-scale SVG of training curves, command-line flags.
#![allow(dead_code)]

/// Curves per epoch (or step) as an SVG with a log-scale y axis: `(name, colour, values)`,
/// value 0 at x = 0 (before training).
pub fn plot(
    path: &str,
    title: &str,
    x_label: &str,
    curves: &[(&str, &str, Vec<f64>)],
) -> std::io::Result<()> {
    let (width, height, margin) = (640.0, 400.0, 50.0);
    let values = curves
        .iter()
        .flat_map(|c| c.2.iter().copied())
        .filter(|v| *v > 0.0);
    let (low, high) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let (low, high) = (
        low.log10().floor(),
        high.log10().ceil().max(low.log10().floor() + 1.0),
    );
    let epochs = curves.iter().map(|c| c.2.len()).max().unwrap_or(1).max(2) - 1;
    let x = |i: usize| margin + (width - 2.0 * margin) * i as f64 / epochs as f64;
    let y = |v: f64| height - margin - (height - 2.0 * margin) * (v.log10() - low) / (high - low);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{margin}\" y=\"20\">{title}</text>\n"
    );
    for decade in low as i32..=high as i32 {
        let yy = y(10f64.powi(decade));
        svg += &format!(
            "<line x1=\"{margin}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/>\
             <text x=\"5\" y=\"{:.1}\">1e{decade}</text>\n",
            width - margin,
            yy + 4.0
        );
    }
    svg += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\">{x_label}</text>\n",
        width / 2.0 - 60.0,
        height - 12.0
    );
    for (k, (name, color, values)) in curves.iter().enumerate() {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0.0)
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        svg += &format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"{color}\">{name}</text>\n",
            points.join(" "),
            width - margin - 220.0,
            margin + 16.0 * k as f64
        );
    }
    svg += "</svg>\n";
    if let Some(folder) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(folder)?;
    }
    std::fs::write(path, svg)
}

/// `--name value` from the command line, or `default`.
pub fn flag(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
