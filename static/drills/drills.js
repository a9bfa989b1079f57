// Drill scores by quarter (Apache ECharts, from npm), from #drills-chart-data.
(function () {
  "use strict";
  function draw() {
    const source = document.getElementById("drills-chart-data");
    const node = document.querySelector("[data-chart=scores]");
    if (!source || !node || !window.echarts) return;
    const scores = JSON.parse(source.textContent).scores || [];
    const chart = window.echarts.init(node, null, { renderer: "svg" });
    const zh = (document.documentElement.lang || "").startsWith("zh");
    chart.setOption({
      animation: false,
      grid: { left: 40, right: 16, top: 20, bottom: 26 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: scores.map((row) => row.quarter) },
      yAxis: { type: "value", min: 0, max: 100 },
      series: [{ name: zh ? "演练得分" : "Drill score", type: "line", data: scores.map((row) => row.score), color: "#7c3aed", label: { show: true } }],
    });
    node.dataset.drawn = "1";
    window.addEventListener("resize", () => chart.resize());
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
