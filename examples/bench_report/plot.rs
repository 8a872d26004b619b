//! PNG plots of time against size (plotters), written beside BENCHMARKS.md.

use std::error::Error;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

/// Where the plots' text font is read from (Debian's fonts-dejavu-core); without it there is
/// no plot, and the report says so.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// A file-name-safe short form of a device name: "llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan,
/// Cpu)" → "llvmpipe".
pub fn slug(device: &str) -> String {
    device
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| !w.is_empty())
        .unwrap_or("device")
        .to_ascii_lowercase()
}

/// A named curve of `(L, seconds)` points.
pub type Curve = (String, Vec<(f64, f64)>);

/// One panel per `(title, curves)`, side by side, each curve as milliseconds on a log axis.
pub fn time_against_l(path: &str, panels: &[(String, Vec<Curve>)]) -> Result<(), Box<dyn Error>> {
    let font: &'static [u8] = Box::leak(std::fs::read(FONT)?.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, font).map_err(|_| "unreadable font")?;
    if let Some(folder) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(folder)?;
    }
    let root = BitMapBackend::new(path, (640 * panels.len() as u32, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    for (area, (title, curves)) in root.split_evenly((1, panels.len())).iter().zip(panels) {
        let ms = curves.iter().flat_map(|c| c.1.iter().map(|p| p.1 * 1e3));
        let (low, high) = ms.fold((f64::MAX, 0.0f64), |(a, b), t| (a.min(t), b.max(t)));
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(0.5f64..10.5f64, (low / 1.5..high * 1.5).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("L")
            .y_desc("median ms")
            .x_labels(10)
            .x_label_formatter(&|l| format!("{l:.0}"))
            .y_label_formatter(&|t| format!("{t}"))
            .draw()?;
        for (i, (name, points)) in curves.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let line = points.iter().map(|&(l, t)| (l, t * 1e3));
            chart
                .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart.draw_series(line.map(|p| Circle::new(p, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
