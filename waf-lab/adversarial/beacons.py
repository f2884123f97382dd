#!/usr/bin/env python3
"""Writes benign-beacons-s11.jsonl: analytics beacons, search requests and
UI telemetry of common platforms (GA4, Segment, Adobe Analytics, Hotjar,
Shopify, WooCommerce, Magento, Algolia, Sentry) carrying the UI strings,
search queries and product text of benign.py in many languages."""
import json, sys, urllib.parse as up
sys.path.insert(0, __import__("os").path.dirname(__file__))
from benign import VALUES

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"

def req(method, path, query="", headers=None, body=""):
    h = {"Host": "shop.example", "User-Agent": UA}
    h.update(headers or {})
    return {"source": "benign-beacons-s11", "label": "benign", "attack_type": None,
            "method": method, "path": path, "query": query, "headers": h, "body": body}

def q(d):
    return up.urlencode(d, quote_via=up.quote)

def requests(text):
    yield req("POST", "/g/collect", q({"v": "2", "tid": "G-ABC123XYZ", "en": "page_view",
        "dl": "https://shop.example/account/avatar", "dt": text, "ep.button_text": text, "_p": "1733510000"}))
    yield req("POST", "/v1/t", "", {"Content-Type": "application/json"}, json.dumps({
        "type": "track", "event": "Button Clicked", "anonymousId": "5f1e8c2a-9b7d-4c1e-8f3a-2d6b0e4c9a71",
        "properties": {"label": text, "page": "/checkout", "variant": "b"},
        "context": {"locale": "fr-FR", "page": {"title": text, "url": "https://shop.example/checkout"}}}))
    yield req("GET", "/b/ss/shopprod/1/JS-2.22.0/s1234", q({"AQB": "1", "pageName": text,
        "v12": text, "c5": "account:avatar", "events": "event12", "AQE": "1"}))
    yield req("POST", "/api/v2/client/sites/123/visit-data", "", {"Content-Type": "application/json"},
        json.dumps({"r_value": 1, "events": [{"type": "click", "selector": "button.upload", "text": text}]}))
    yield req("GET", "/search", q({"q": text, "options[prefix]": "last", "type": "product"}))
    yield req("POST", "/cart/add.js", "", {"Content-Type": "application/x-www-form-urlencoded"},
        q({"id": "40123456789", "quantity": "1", "properties[Engraving]": text}))
    yield req("POST", "/wp-admin/admin-ajax.php", "", {"Content-Type": "application/x-www-form-urlencoded"},
        q({"action": "woocommerce_add_order_item_note", "note": text, "note_type": "customer", "security": "3f9a1c2b7d"}))
    yield req("POST", "/rest/V1/carts/mine/comment", "", {"Content-Type": "application/json"},
        json.dumps({"comment": {"text": text, "visible_on_front": True}}))
    yield req("POST", "/1/indexes/*/queries", q({"x-algolia-agent": "Algolia for JavaScript (4.22.1)"}),
        {"Content-Type": "application/json"}, json.dumps({"requests": [{"indexName": "products",
        "params": "query=" + up.quote(text) + "&hitsPerPage=20"}]}))
    yield req("POST", "/api/42/envelope/", "", {"Content-Type": "text/plain;charset=UTF-8"},
        json.dumps({"event_id": "9f1e2d3c4b5a69788796a5b4c3d2e1f0"}) + "\n" + json.dumps({"type": "event"}) + "\n" +
        json.dumps({"message": "Tooltip rendered: " + text, "level": "info", "breadcrumbs": [{"category": "ui.click", "message": text}]}))

def main(out):
    with open(out, "w") as f:
        for v in VALUES:
            for r in requests(v):
                f.write(json.dumps(r, ensure_ascii=False) + "\n")

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "benign-beacons-s11.jsonl")
