// A simplified map of Japan drawn in SVG from approximate coastline points ([longitude,
// latitude] in degrees), with Okinawa and Kanto in insets. Good enough to place the sites and stores
// at their coordinates; not a survey.
"use strict";

const JAPAN = {
  width: 760,
  height: 700,
  // Main frame: longitude 128.3..146.2, latitude 30.6..45.8 (equirectangular, scaled by
  // cos 37° so shapes are not stretched).
  main: { lon0: 128.3, lon1: 146.2, lat0: 30.6, lat1: 45.8 },
  // Inset (bottom right) for the Nansei islands: longitude 126.6..129.0, latitude 25.9..27.2.
  inset: { lon0: 126.6, lon1: 129.0, lat0: 25.9, lat1: 27.2, x: 560, y: 560, w: 180, h: 110 },
  // Inset (top left, over the Sea of Japan) for Kanto: three sites and a dozen stores lie
  // within 60 km, a few pixels apart on the main frame. Longitude 139.42..140.06, latitude
  // 35.40..35.98, about 587 units a degree (cos 37° across), so neighbouring Tokyo stores
  // (3 km) are over 17 units apart.
  kanto: { lon0: 139.42, lon1: 140.06, lat0: 35.4, lat1: 35.98, x: 12, y: 12, w: 300, h: 340 },
  islands: {
    hokkaido: [
      [141.94, 45.52], [142.6, 44.9], [143.3, 44.3], [144.3, 44.0], [145.2, 44.3], [145.35, 44.2],
      [144.8, 43.9], [145.3, 43.6], [145.8, 43.4], [145.2, 43.2], [144.3, 42.95], [143.5, 42.4],
      [143.3, 41.95], [142.5, 42.25], [141.7, 42.6], [141.0, 42.3], [141.2, 41.8], [140.95, 41.75],
      [140.1, 41.45], [139.95, 41.9], [140.1, 42.3], [139.8, 42.6], [140.3, 42.9], [140.45, 43.35],
      [141.2, 43.2], [141.4, 43.6], [141.65, 44.3], [141.65, 44.9],
    ],
    honshu: [
      [140.9, 41.55], [141.45, 41.4], [141.4, 40.6], [141.9, 40.0], [142.05, 39.5], [141.6, 38.9],
      [141.5, 38.4], [141.0, 38.2], [140.95, 37.7], [141.05, 36.9], [140.6, 36.3], [140.85, 35.75],
      [140.4, 35.2], [139.85, 34.9], [139.95, 35.4], [139.75, 35.6], [139.65, 35.3], [139.15, 35.25],
      [139.1, 34.7], [138.8, 34.6], [138.75, 35.1], [138.2, 34.6], [137.3, 34.65], [137.05, 34.6],
      [136.9, 34.8], [136.6, 34.5], [136.9, 34.3], [136.2, 33.9], [135.75, 33.45], [135.1, 33.9],
      [135.2, 34.3], [135.45, 34.6], [135.1, 34.65], [134.5, 34.75], [133.9, 34.5], [133.4, 34.35],
      [132.5, 34.3], [132.1, 33.95], [131.6, 34.0], [130.9, 33.95], [131.0, 34.35], [131.4, 34.45],
      [132.0, 34.85], [132.6, 35.35], [133.1, 35.55], [133.6, 35.5], [134.3, 35.55], [135.0, 35.7],
      [135.5, 35.55], [136.0, 35.7], [136.1, 36.2], [136.75, 36.95], [136.9, 37.4], [137.3, 37.5],
      [137.0, 36.9], [137.35, 36.75], [138.2, 37.1], [138.6, 37.4], [139.1, 37.95], [139.6, 38.5],
      [139.8, 39.2], [140.0, 39.8], [139.7, 39.95], [140.0, 40.3], [139.9, 40.6], [140.3, 41.15],
      [140.65, 41.2], [140.75, 40.85], [141.2, 40.95], [141.2, 41.3],
    ],
    shikoku: [
      [132.55, 33.9], [133.0, 34.05], [133.6, 34.4], [134.1, 34.35], [134.6, 34.2], [134.7, 33.85],
      [134.25, 33.4], [133.6, 33.5], [133.0, 32.75], [132.5, 32.9], [132.4, 33.4], [132.0, 33.35],
    ],
    kyushu: [
      [130.9, 33.95], [131.2, 33.6], [131.7, 33.3], [131.9, 32.8], [131.5, 31.9], [131.3, 31.4],
      [130.7, 31.0], [130.2, 31.2], [130.2, 31.7], [130.5, 32.1], [130.15, 32.5], [130.4, 32.6],
      [130.6, 32.8], [130.1, 33.0], [129.6, 32.6], [129.8, 33.2], [129.6, 33.4], [130.0, 33.5],
      [130.4, 33.65],
    ],
    okinawa: [
      [127.65, 26.08], [127.9, 26.4], [128.3, 26.8], [128.25, 26.9], [127.95, 26.7],
      [127.75, 26.45], [127.7, 26.2],
    ],
  },
};

/** Where (lat, lon) falls on the map: [x, y] in SVG units. A point in the Kanto frame is
 * drawn in its inset, unless `land` (the coastline, drawn on the main frame too). */
function project(lat, lon, land = false) {
  const i = JAPAN.inset;
  if (lat < 29 && lon < 129.5) {
    const x = i.x + ((lon - i.lon0) / (i.lon1 - i.lon0)) * i.w;
    const y = i.y + ((i.lat1 - lat) / (i.lat1 - i.lat0)) * i.h;
    return [x, y];
  }
  const q = JAPAN.kanto;
  if (!land && lat >= q.lat0 && lat <= q.lat1 && lon >= q.lon0 && lon <= q.lon1) {
    return kantoPoint(lat, lon);
  }
  const m = JAPAN.main;
  const k = Math.cos((37 * Math.PI) / 180);
  const spanX = (m.lon1 - m.lon0) * k;
  const spanY = m.lat1 - m.lat0;
  const scale = Math.min(JAPAN.width / spanX, JAPAN.height / spanY);
  return [(lon - m.lon0) * k * scale, (m.lat1 - lat) * scale];
}

/** Where (lat, lon) falls in the Kanto inset. */
function kantoPoint(lat, lon) {
  const q = JAPAN.kanto;
  return [
    q.x + ((lon - q.lon0) / (q.lon1 - q.lon0)) * q.w,
    q.y + ((q.lat1 - lat) / (q.lat1 - q.lat0)) * q.h,
  ];
}

/** The map's base layer: sea, islands, the insets' frames, and where Kanto's inset is. */
function japanBase() {
  const g = svg("g", { class: "base" });
  g.append(svg("rect", { class: "sea", x: 0, y: 0, width: JAPAN.width, height: JAPAN.height }));
  for (const [name, points] of Object.entries(JAPAN.islands)) {
    const d = points.map(([lon, lat]) => project(lat, lon, true).map((v) => v.toFixed(1)).join(",")).join(" ");
    g.append(svg("polygon", { class: "land", "data-island": name, points: d }));
  }
  const q = JAPAN.kanto;
  const clip = svg("clipPath", { id: "kanto-clip" });
  clip.append(svg("rect", { x: q.x, y: q.y, width: q.w, height: q.h }));
  g.append(clip);
  g.append(svg("rect", { class: "sea", x: q.x, y: q.y, width: q.w, height: q.h }));
  const kanto = svg("g", { "clip-path": "url(#kanto-clip)" });
  for (const [name, points] of Object.entries(JAPAN.islands)) {
    const d = points.map(([lon, lat]) => kantoPoint(lat, lon).map((v) => v.toFixed(1)).join(",")).join(" ");
    kanto.append(svg("polygon", { class: "land", "data-island": name, points: d }));
  }
  g.append(kanto);
  g.append(svg("rect", { class: "inset", x: q.x, y: q.y, width: q.w, height: q.h }));
  g.append(svg("text", { x: q.x + 6, y: q.y + 14, class: "muted", text: "Kanto", fill: "#8da2b5", "font-size": 11 }));
  const [ax, ay] = project(q.lat1, q.lon0, true);
  const [bx, by] = project(q.lat0, q.lon1, true);
  g.append(svg("rect", { class: "inset", "data-inset": "kanto", x: ax, y: ay, width: bx - ax, height: by - ay }));
  const i = JAPAN.inset;
  g.append(svg("rect", { class: "inset", x: i.x, y: i.y, width: i.w, height: i.h }));
  g.append(svg("text", { x: i.x + 6, y: i.y + 14, class: "muted", text: "Okinawa", fill: "#8da2b5", "font-size": 11 }));
  return g;
}
