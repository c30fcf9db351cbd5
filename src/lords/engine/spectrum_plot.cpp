#include "lords/engine/spectrum_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace lords::engine {
namespace {

// Canvas and plot area in SVG user units (pixels).
constexpr double kWidth = 760;
constexpr double kLeft = 80, kRight = 740, kTop = 50, kBottom = 430;
constexpr double kLegendRow = 18;  // legend rows below the x-axis label, one per spectrum
constexpr int kMaxDecades = 12;    // the y axis spans at most 1e-12 .. 1
// Matplotlib's tab10: distinguishable, and readable by most colour-blind viewers.
constexpr const char* kColors[] = {"#1f77b4",
                                   "#ff7f0e",
                                   "#2ca02c",
                                   "#d62728",
                                   "#9467bd",
                                   "#8c564b",
                                   "#e377c2",
                                   "#7f7f7f",
                                   "#bcbd22",
                                   "#17becf"};

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A 1-2-5 step giving at most about 8 ticks over [1, n].
int64_t tick_step(int64_t n) {
  int64_t step = 1;
  for (int64_t scale = 1;; scale *= 10) {
    for (int64_t m : {1, 2, 5}) {
      step = m * scale;
      if (n / step <= 8) return step;
    }
  }
}

struct Axes {
  int64_t n_max = 1;     // largest index shown
  int lo_decade = -1;    // bottom of the y axis: 10^lo_decade
  bool clamped = false;  // some σ_i / σ_1 lies below 10^lo_decade (or is 0) and sits on the axis

  double x(double i) const {
    return n_max <= 1 ? (kLeft + kRight) / 2
                      : kLeft + (i - 1) / double(n_max - 1) * (kRight - kLeft);
  }
  double y(double v) const {
    const double d = std::clamp(std::log10(std::max(v, 1e-300)), double(lo_decade), 0.0);
    return kTop + (-d) / double(-lo_decade) * (kBottom - kTop);
  }
};

Axes make_axes(const std::vector<Spectrum>& spectra) {
  Axes a;
  double min_ratio = 1;
  for (const Spectrum& s : spectra) {
    a.n_max = std::max<int64_t>(a.n_max, static_cast<int64_t>(s.sigma.size()));
    if (s.sigma.empty() || s.sigma[0] <= 0) continue;
    for (double v : s.sigma) {
      if (v > 0) min_ratio = std::min(min_ratio, v / s.sigma[0]);
      a.clamped = a.clamped || v <= 0;
    }
  }
  a.lo_decade = std::clamp(static_cast<int>(std::floor(std::log10(min_ratio))), -kMaxDecades, -1);
  a.clamped = a.clamped || min_ratio < std::pow(10.0, a.lo_decade);
  return a;
}

void draw_axes(std::string* svg, const Axes& a) {
  std::string& o = *svg;
  // y: one tick per decade (every second or third when there are many), grid lines across.
  const int ystep = -a.lo_decade <= 6 ? 1 : -a.lo_decade <= 12 ? 2 : 3;
  for (int d = 0; d >= a.lo_decade; d -= ystep) {
    const double y = a.y(std::pow(10.0, d));
    o += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#dddddd\"/>\n",
        kLeft,
        y,
        kRight,
        y);
    o += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"black\"/>\n",
        kLeft - 5,
        y,
        kLeft,
        y);
    o += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" font-size=\"12\">10<tspan dy=\"-6\" "
        "font-size=\"9\">{}</tspan></text>\n",
        kLeft - 8,
        y + 4,
        d);
  }
  // x: index 1, then multiples of a 1-2-5 step.
  std::vector<int64_t> ticks = {1};
  const int64_t step = tick_step(a.n_max);
  for (int64_t i = step; i <= a.n_max; i += step)
    if (i != 1) ticks.push_back(i);
  for (int64_t idx : ticks) {
    const double x = a.x(double(idx));
    o += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#eeeeee\"/>\n",
        x,
        kTop,
        x,
        kBottom);
    o += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"black\"/>\n",
        x,
        kBottom,
        x,
        kBottom + 5);
    o += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"12\">{}</text>\n",
        x,
        kBottom + 19,
        idx);
  }
  o += fmt::format(
      "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" "
      "stroke=\"black\"/>\n",
      kLeft,
      kTop,
      kRight - kLeft,
      kBottom - kTop);
  o += fmt::format(
      "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"13\">index i</text>\n",
      (kLeft + kRight) / 2,
      kBottom + 40);
  o += fmt::format(
      "<text x=\"20\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 "
      "20 {:.1f})\">"
      "&#963;<tspan dy=\"4\" font-size=\"10\">i</tspan><tspan dy=\"-4\"> / &#963;</tspan><tspan "
      "dy=\"4\" "
      "font-size=\"10\">1</tspan></text>\n",
      (kTop + kBottom) / 2,
      (kTop + kBottom) / 2);
}

}  // namespace

std::string spectrum_svg(const std::vector<Spectrum>& spectra, const std::string& title) {
  const Axes a = make_axes(spectra);
  const double height = kBottom + 62 + kLegendRow * double(spectra.size());
  std::string o = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o += fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\">\n",
      kWidth,
      height);
  o += "<title>" + xml_escape(title) + "</title>\n";
  o += fmt::format("<rect width=\"{}\" height=\"{}\" fill=\"white\"/>\n", kWidth, height);
  o +=
      fmt::format("<text x=\"{:.1f}\" y=\"28\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
                  (kLeft + kRight) / 2,
                  xml_escape(title));
  draw_axes(&o, a);
  if (a.clamped)
    o += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" font-size=\"10\" fill=\"#666666\">"
        "values below 10^{} (and 0) drawn on the axis</text>\n",
        kRight - 4,
        kBottom - 5,
        a.lo_decade);
  // Curves, clipped to the plot area so nothing strays over the axes.
  o += fmt::format(
      "<clipPath id=\"plot\"><rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" "
      "height=\"{:.1f}\"/></clipPath>\n",
      kLeft,
      kTop,
      kRight - kLeft,
      kBottom - kTop);
  for (size_t c = 0; c < spectra.size(); ++c) {
    const Spectrum& s = spectra[c];
    if (s.sigma.empty() || s.sigma[0] <= 0) continue;
    std::string pts;
    for (size_t i = 0; i < s.sigma.size(); ++i)
      pts += fmt::format(
          "{}{:.2f},{:.2f}", i ? " " : "", a.x(double(i + 1)), a.y(s.sigma[i] / s.sigma[0]));
    o += fmt::format(
        "<polyline clip-path=\"url(#plot)\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\" "
        "points=\"{}\"/>\n",
        kColors[c % std::size(kColors)],
        pts);
  }
  // Legend below the x-axis label, where it cannot hide a curve.
  o += "<g id=\"legend\">\n";
  for (size_t c = 0; c < spectra.size(); ++c) {
    const Spectrum& s = spectra[c];
    const std::string info =
        s.sigma.empty() || s.sigma[0] <= 0
            ? std::string("dW = 0")
            : fmt::format("{}, adapter rank {}, r99 {}, numerical rank {}, stable rank {:.1f}",
                          delta_kind_name(s.kind),
                          s.adapter_rank,
                          s.rank99,
                          s.numerical_rank,
                          s.stable_rank);
    const double y = kBottom + 66 + kLegendRow * double(c);
    o += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
        "stroke-width=\"2.5\"/>\n",
        kLeft,
        y - 4,
        kLeft + 24,
        y - 4,
        kColors[c % std::size(kColors)]);
    o += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"12\">{} ({})</text>\n",
                     kLeft + 32,
                     y,
                     xml_escape(s.label),
                     xml_escape(info));
  }
  o += "</g>\n</svg>\n";
  return o;
}

}  // namespace lords::engine
