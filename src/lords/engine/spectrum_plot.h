// A hand-written SVG line plot of singular-value spectra: σ_i / σ_1 on a log10 y axis against the
// index i (1-based, linear x axis), one curve per spectrum, with axes, ticks, grid, labels and a
// legend (below the plot). Values below the lowest decade shown (at most 12 decades under 1) sit on
// the bottom axis, with a note saying so; a spectrum of ΔW = 0 gets a legend entry and no curve.
// Self-contained SVG 1.1, no script or CSS.
#pragma once

#include <string>
#include <vector>

#include "lords/engine/delta_spectrum.h"

namespace lords::engine {

std::string spectrum_svg(const std::vector<Spectrum>& spectra, const std::string& title);

}  // namespace lords::engine
