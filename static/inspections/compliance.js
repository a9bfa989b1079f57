// The inspection compliance chart (Apache ECharts, from npm): stacked on time / late / missed per month and the
// on-time rate, drawn from the JSON the page carries in #compliance-chart-data (words included, in the reader's
// language).
(function () {
  "use strict";

  function draw() {
    const source = document.getElementById("compliance-chart-data");
    const node = document.getElementById("compliance-chart");
    if (!source || !node || !window.echarts) return;
    const data = JSON.parse(source.textContent);
    const words = data.labels;
    const axis = { axisLabel: { fontSize: 11 }, splitLine: { lineStyle: { color: "#eceff3" } } };
    const chart = window.echarts.init(node, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      grid: { left: 44, right: 44, top: 34, bottom: 26 },
      tooltip: { trigger: "axis" },
      legend: { top: 0, textStyle: { fontSize: 11 } },
      xAxis: { type: "category", data: data.months, axisLabel: { fontSize: 11 } },
      yAxis: [
        Object.assign({ type: "value", minInterval: 1 }, axis),
        Object.assign({ type: "value", min: 0, max: 100 }, axis, { splitLine: { show: false } }),
      ],
      series: [
        { name: words.on_time, type: "bar", stack: "n", data: data.on_time, color: "#1c7c3c", barMaxWidth: 28 },
        { name: words.late, type: "bar", stack: "n", data: data.late, color: "#f59e0b", barMaxWidth: 28 },
        { name: words.missed, type: "bar", stack: "n", data: data.missed, color: "#b42318", barMaxWidth: 28 },
        { name: words.rate, type: "line", yAxisIndex: 1, data: data.rate, color: "#2563eb", smooth: true },
      ],
    });
    window.addEventListener("resize", () => chart.resize());
    node.dataset.drawn = "1";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
