#!/usr/bin/env python3
"""Writes benign-platforms-s12.jsonl: realistic requests of common platforms and
apps that the corpora lack (WordPress admin and Gutenberg, WooCommerce /
Shopify / Magento carts and checkouts, Sitecore, SAP Commerce, Salesforce
Lightning, GraphQL of ordinary apps, Markdown and code snippets in comments
and issue trackers, search queries in many languages, analytics and
tag-manager beacons, OAuth/OIDC/SAML redirects with state, nonce and JWTs).
The record's `source` names the platform (the lab's group)."""
import base64, json, os, urllib.parse as up

UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
JSONH = {"Content-Type": "application/json"}

def req(site, method, path, query="", headers=None, body=""):
    h = {"Host": "www.example.com", "User-Agent": UA, "Accept": "*/*", "Accept-Language": "en-GB,en;q=0.9"}
    h.update(headers or {})
    if not isinstance(body, str):
        body = json.dumps(body, ensure_ascii=False)
    return {"source": "benign-platforms-s12/" + site, "label": "benign", "attack_type": None,
            "method": method, "path": path, "query": query, "headers": h, "body": body}

def q(d):
    return up.urlencode(d, quote_via=up.quote)

def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def jwt(claims):
    head = b64u(json.dumps({"alg": "RS256", "kid": "1e9gdk7", "typ": "JWT"}).encode())
    return head + "." + b64u(json.dumps(claims).encode()) + "." + b64u(bytes(range(64)) * 4)

GUTENBERG = [
    '<!-- wp:paragraph -->\n<p>Welcome to our <strong>spring sale</strong> &#8211; up to 30% off!</p>\n<!-- /wp:paragraph -->',
    '<!-- wp:image {"id":42,"sizeSlug":"large","linkDestination":"none"} -->\n<figure class="wp-block-image size-large"><img src="https://www.example.com/wp-content/uploads/2024/05/hero-1024x683.jpg" alt="Our team at the office" class="wp-image-42"/></figure>\n<!-- /wp:image -->',
    '<!-- wp:heading {"level":3} -->\n<h3 class="wp-block-heading">Select the plan that fits (or contact us)</h3>\n<!-- /wp:heading -->',
    '<!-- wp:list -->\n<ul><li>Free shipping over $50</li><li>30-day returns &amp; exchanges</li></ul>\n<!-- /wp:list -->',
    '<!-- wp:buttons -->\n<div class="wp-block-buttons"><!-- wp:button {"backgroundColor":"vivid-red"} -->\n<div class="wp-block-button"><a class="wp-block-button__link has-vivid-red-background-color wp-element-button" href="/shop/?orderby=price-desc">Shop now</a></div>\n<!-- /wp:button --></div>\n<!-- /wp:buttons -->',
    '<!-- wp:code -->\n<pre class="wp-block-code"><code>add_filter( \'the_content\', function ( $content ) {\n    return $content . \'&lt;p&gt;Thanks for reading!&lt;/p&gt;\';\n} );</code></pre>\n<!-- /wp:code -->',
    '<!-- wp:embed {"url":"https://www.youtube.com/watch?v=dQw4w9WgXcQ","type":"video","providerNameSlug":"youtube"} -->\n<figure class="wp-block-embed is-type-video"><div class="wp-block-embed__wrapper">\nhttps://www.youtube.com/watch?v=dQw4w9WgXcQ\n</div></figure>\n<!-- /wp:embed -->',
    '<!-- wp:table -->\n<figure class="wp-block-table"><table><thead><tr><th>Size</th><th>Chest (cm)</th></tr></thead><tbody><tr><td>S</td><td>86-91</td></tr><tr><td>M</td><td>96-101</td></tr></tbody></table></figure>\n<!-- /wp:table -->',
    '<!-- wp:shortcode -->\n[contact-form-7 id="123" title="Contact form 1"]\n<!-- /wp:shortcode -->',
    '<!-- wp:html -->\n<iframe src="https://www.google.com/maps/embed?pb=!1m18!1m12" width="600" height="450" style="border:0;" allowfullscreen="" loading="lazy"></iframe>\n<!-- /wp:html -->',
]

def wordpress():
    for i, block in enumerate(GUTENBERG):
        yield req("wordpress", "POST", "/wp-json/wp/v2/posts/%d" % (100 + i), "_locale=user",
                  {**JSONH, "X-WP-Nonce": "a1b2c3d4e5", "Cookie": "wordpress_logged_in_abc=admin%7C1733600000%7Ctoken%7Chash"},
                  {"id": 100 + i, "title": "Spring update #%d" % i, "content": block, "status": "draft",
                   "meta": {"_yoast_wpseo_metadesc": "Select from our spring range"}})
        yield req("wordpress", "POST", "/wp-admin/post.php", "", FORM,
                  q({"_wpnonce": "a1b2c3d4e5", "_wp_http_referer": "/wp-admin/post.php?post=%d&action=edit" % (100 + i),
                     "user_ID": "1", "action": "editpost", "post_ID": str(100 + i), "post_title": "Spring update",
                     "content": block, "post_status": "draft", "tax_input[post_tag]": "sale, spring, news"}))
    yield req("wordpress", "POST", "/wp-admin/admin-ajax.php", "", FORM,
              q({"data[wp-refresh-post-lock][lock]": "1733600000:1", "data[wp-refresh-post-lock][post_id]": "101",
                 "interval": "60", "_nonce": "a1b2c3d4e5", "action": "heartbeat", "screen_id": "post", "has_focus": "true"}))
    yield req("wordpress", "GET", "/wp-json/wp/v2/block-renderer/core/latest-posts",
              q({"context": "edit", "attributes[postsToShow]": "5", "attributes[order]": "desc", "attributes[orderBy]": "date", "_locale": "user"}))
    yield req("wordpress", "POST", "/wp-admin/customize.php", "", FORM,
              q({"wp_customize": "on", "customize_theme": "twentytwentyfour", "nonce": "a1b2c3d4e5",
                 "customized": json.dumps({"blogname": "Joe's Coffee & Tea", "blogdescription": "Select, roast, brew (or order online)",
                                           "custom_css[twentytwentyfour]": ".site-header { background: #222 !important; }\n@media (max-width: 600px) { .nav > li:not(:last-child) { display: none; } }",
                                           "nav_menu_item[-1]": {"object_id": 0, "type": "custom", "title": "Shop", "url": "/shop/?orderby=popularity", "position": 1}})}))
    yield req("wordpress", "GET", "/wp-admin/edit.php", q({"s": "select 2024", "post_status": "all", "post_type": "post", "orderby": "title", "order": "asc", "paged": "2"}))
    yield req("wordpress", "POST", "/wp-admin/options.php", "", FORM,
              q({"option_page": "general", "action": "update", "_wpnonce": "a1b2c3d4e5", "blogname": "O'Neil & Sons",
                 "date_format": "F j, Y", "time_format": "g:i a", "timezone_string": "Europe/London", "siteurl": "https://www.example.com"}))

def woocommerce():
    post_data = q({"billing_first_name": "Seán", "billing_last_name": "O'Connor", "billing_company": "",
                   "billing_country": "IE", "billing_address_1": "12 O'Connell St., Apt #4", "billing_city": "Dublin",
                   "billing_postcode": "D01 F5P2", "billing_phone": "+353 1 234 5678", "billing_email": "sean@example.ie",
                   "order_comments": "Please leave it with the neighbour (no. 14) if I'm out -- thanks!",
                   "shipping_method[0]": "flat_rate:1", "payment_method": "stripe",
                   "woocommerce-process-checkout-nonce": "5c1d2e3f4a", "_wp_http_referer": "/?wc-ajax=update_order_review"})
    yield req("woocommerce", "POST", "/", "wc-ajax=update_order_review", FORM,
              q({"security": "9a8b7c6d5e", "payment_method": "stripe", "country": "IE", "state": "D", "postcode": "D01 F5P2",
                 "city": "Dublin", "address": "12 O'Connell St., Apt #4", "address_2": "", "has_full_address": "true",
                 "post_data": post_data}))
    yield req("woocommerce", "POST", "/", "wc-ajax=checkout", FORM, post_data)
    yield req("woocommerce", "POST", "/", "wc-ajax=add_to_cart", FORM,
              q({"product_sku": "TSHIRT-RED-M", "product_id": "1234", "quantity": "2", "attribute_pa_size": "m", "attribute_pa_color": "red"}))
    yield req("woocommerce", "POST", "/cart/", "", FORM,
              q({"cart[3c59dc048e8850243be8079a5c74d079][qty]": "3", "coupon_code": "SPRING-20", "woocommerce-cart-nonce": "7f6e5d4c3b",
                 "_wp_http_referer": "/cart/", "update_cart": "Update cart"}))
    yield req("woocommerce", "GET", "/wp-json/wc/store/v1/products", q({"per_page": "24", "orderby": "price", "order": "desc", "search": "men's shoes", "min_price": "2000", "max_price": "9900"}))
    yield req("woocommerce", "POST", "/wp-json/wc/store/v1/checkout", "", {**JSONH, "Nonce": "abc123"},
              {"billing_address": {"first_name": "Zoë", "last_name": "D'Amico", "address_1": "Via dell'Orso 5", "city": "Roma", "postcode": "00186", "country": "IT", "email": "zoe@example.it", "phone": "+39 06 1234567"},
               "customer_note": "Citofono: D'Amico/Rossi. Se non ci sono, lasciate pure in portineria (2° piano)", "payment_method": "bacs",
               "extensions": {"woocommerce/order-attribution": {"source_type": "typein", "referrer": "(none)", "utm_campaign": "(none)", "utm_source": "(direct)", "utm_medium": "(none)", "session_entry": "https://www.example.com/shop/", "session_start_time": "2024-12-07 10:11:12", "session_pages": "4", "session_count": "1", "user_agent": UA}}})

def shopify():
    yield req("shopify", "POST", "/cart/update.js", "", JSONH, {"updates": {"40123456789": 2, "40123456790": 0}, "note": "Gift wrap please :) -- it's for my mum's 60th!", "attributes": {"Delivery date": "2024-12-24", "How did you hear about us?": "Instagram / TikTok"}})
    yield req("shopify", "POST", "/cart/change.js", "", JSONH, {"id": "40123456789:9a8b7c", "quantity": 1, "properties": {"_bundle_id": "b-123", "Engraving": "To J. — love always <3", "_gift": "true"}})
    yield req("shopify", "POST", "/cart/add", "", FORM, q({"form_type": "product", "utf8": "✓", "id": "40123456789", "quantity": "1", "properties[Monogram]": "A&B", "properties[Font]": "Script (cursive)", "product-id": "7012345678901", "section-id": "template--1234__main"}))
    yield req("shopify", "GET", "/search/suggest.json", q({"q": "50% off hoodie", "resources[type]": "product,collection,query", "resources[limit]": "4", "resources[options][unavailable_products]": "last", "section_id": "predictive-search"}))
    yield req("shopify", "GET", "/collections/all", q({"filter.v.price.gte": "10", "filter.v.price.lte": "100", "filter.p.m.custom.material": "100% cotton", "sort_by": "price-ascending"}))
    yield req("shopify", "POST", "/checkouts/cn/Z2NwLWV1cm9wZS13ZXN0NDowMUpFR0ZH/information", "", FORM,
              q({"_method": "patch", "authenticity_token": "kZ5u1n2b3v4c5x6z7", "previous_step": "contact_information", "step": "shipping_method",
                 "checkout[email]": "jane@example.com", "checkout[shipping_address][first_name]": "Jane", "checkout[shipping_address][address1]": "1 Infinite Loop, Suite #100",
                 "checkout[shipping_address][city]": "Cupertino", "checkout[shipping_address][province]": "CA", "checkout[shipping_address][zip]": "95014",
                 "checkout[client_details][browser_width]": "1440", "checkout[client_details][javascript_enabled]": "1"}))
    yield req("shopify", "POST", "/api/2024-07/graphql.json", "", {**JSONH, "X-Shopify-Storefront-Access-Token": "0123456789abcdef0123456789abcdef"},
              {"query": "query getProducts($first: Int!, $query: String, $sortKey: ProductSortKeys, $reverse: Boolean) @inContext(country: GB, language: EN) {\n  products(first: $first, query: $query, sortKey: $sortKey, reverse: $reverse) {\n    edges { cursor node { id handle title priceRange { minVariantPrice { amount currencyCode } } } }\n    pageInfo { hasNextPage endCursor }\n  }\n}",
               "variables": {"first": 24, "query": "tag:sale AND product_type:'T-Shirts' OR vendor:Acme", "sortKey": "PRICE", "reverse": True}})

def magento():
    yield req("magento", "GET", "/rest/V1/products", q({"searchCriteria[filter_groups][0][filters][0][field]": "name",
        "searchCriteria[filter_groups][0][filters][0][value]": "%shirt%", "searchCriteria[filter_groups][0][filters][0][condition_type]": "like",
        "searchCriteria[sortOrders][0][field]": "price", "searchCriteria[sortOrders][0][direction]": "DESC", "searchCriteria[pageSize]": "20", "searchCriteria[currentPage]": "1"}))
    yield req("magento", "GET", "/rest/V1/orders", q({"searchCriteria[filterGroups][0][filters][0][field]": "created_at",
        "searchCriteria[filterGroups][0][filters][0][value]": "2024-12-01 00:00:00", "searchCriteria[filterGroups][0][filters][0][conditionType]": "gteq",
        "fields": "items[increment_id,grand_total,status],total_count"}))
    yield req("magento", "POST", "/checkout/cart/updatePost/", "", FORM, q({"form_key": "Xk3mP9qL2wR7tY5u", "cart[123][qty]": "2", "cart[124][qty]": "1", "update_cart_action": "update_qty"}))
    yield req("magento", "GET", "/customer/section/load/", q({"sections": "cart,directory-data,messages", "force_new_section_timestamp": "true", "_": "1733600000123"}))
    yield req("magento", "POST", "/rest/default/V1/guest-carts/4kVnF2p3Qq8sX1z/estimate-shipping-methods", "", JSONH,
              {"address": {"street": ["Flat 2, 10 Downing St", "c/o Smith & Co."], "city": "London", "region": "Greater London", "country_id": "GB", "postcode": "SW1A 2AA", "firstname": "Anne-Marie", "lastname": "O'Hara", "telephone": "+44 20 7946 0018", "custom_attributes": [{"attribute_code": "delivery_note", "value": "Ring twice; if no answer, leave at door (safe place)"}]}})
    yield req("magento", "GET", "/catalogsearch/result/", q({"q": "men's jacket size L -wool", "product_list_order": "price", "product_list_dir": "desc"}))
    yield req("magento", "GET", "/graphql", q({"query": "{ products(search: \"bag\", filter: {price: {from: \"10\", to: \"50\"}}, sort: {price: DESC}, pageSize: 12) { total_count items { sku name url_key price_range { minimum_price { final_price { value currency } } } } } }"}))
    yield req("magento", "POST", "/admin/catalog/product/save/id/42/", "", FORM,
              q({"form_key": "Xk3mP9qL2wR7tY5u", "product[name]": "Canvas Tote Bag (Natural)", "product[sku]": "TOTE-NAT-01", "product[price]": "24.99",
                 "product[description]": "<p data-content-type=\"row\" data-appearance=\"contained\" data-element=\"main\">Roomy &amp; strong &mdash; select from 3 colours.</p><div data-content-type=\"html\" data-appearance=\"default\" data-element=\"main\">&lt;ul&gt;&lt;li&gt;100% cotton&lt;/li&gt;&lt;/ul&gt;</div>",
                 "product[meta_keyword]": "tote, bag, canvas", "product[url_key]": "canvas-tote-bag-natural"}))

def sitecore():
    yield req("sitecore", "GET", "/sitecore/api/jss/dictionary/corporate/en", q({"sc_apikey": "{2AD3B5E4-6F27-4C8A-9B1D-0E7F3A1C5D92}"}))
    yield req("sitecore", "GET", "/-/media/project/corporate/images/hero/team-2024.jpg", q({"h": "400", "w": "800", "la": "en", "hash": "8C2F1A6B3D4E5F60718293A4B5C6D7E8", "mw": "1200"}))
    yield req("sitecore", "GET", "/sitecore/api/layout/render/jss", q({"item": "/about-us/careers", "sc_lang": "en", "sc_apikey": "{2AD3B5E4-6F27-4C8A-9B1D-0E7F3A1C5D92}", "sc_site": "corporate"}))
    yield req("sitecore", "POST", "/api/sitecore/Forms/Submit", "", {**FORM, "Cookie": "SC_ANALYTICS_GLOBAL_COOKIE=2b1f3c4d5e6f47a8b9c0d1e2f3a4b5c6|True; ASP.NET_SessionId=abcd1234efgh5678; website#lang=en"},
              q({"__RequestVerificationToken": "CfDJ8Nq0abcdEFGH-ijkl_MNOP", "wffm{0A1B2C3D-4E5F-6789-ABCD-EF0123456789}.FormItemId": "{0A1B2C3D-4E5F-6789-ABCD-EF0123456789}",
                 "wffm{0A1B2C3D-4E5F-6789-ABCD-EF0123456789}.Fields[0].Value": "Jürgen Müller", "wffm{0A1B2C3D-4E5F-6789-ABCD-EF0123456789}.Fields[1].Value": "Please call me back (after 5 pm) -- re: order #4711",
                 "__FormId": "{0A1B2C3D-4E5F-6789-ABCD-EF0123456789}"}))
    yield req("sitecore", "GET", "/sitecore/shell/Applications/Content%20Editor.aspx", q({"fo": "{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}", "la": "en", "vs": "1", "sc_bw": "1"}))
    yield req("sitecore", "POST", "/sitecore/api/graph/edge", "", {**JSONH, "sc_apikey": "{2AD3B5E4-6F27-4C8A-9B1D-0E7F3A1C5D92}"},
              {"query": "query Search($rootItemId: String!, $language: String!, $templates: String!) {\n  search(where: { AND: [{ name: \"_path\", value: $rootItemId, operator: CONTAINS }, { name: \"_language\", value: $language }, { name: \"_templates\", value: $templates, operator: EQ }] }, first: 10, orderBy: { name: \"title\", direction: ASC }) {\n    total\n    results { url { path } name }\n  }\n}",
               "variables": {"rootItemId": "{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}", "language": "en", "templates": "{A87A00B1-E6DB-45AB-8B54-636FEC3B5523}"}})

def sap_commerce():
    yield req("sap-commerce", "GET", "/occ/v2/electronics/products/search", q({"query": "camera:relevance:brand:Canon:price:$100-$199.99", "fields": "products(code,name,price(FULL)),facets,breadcrumbs,pagination(DEFAULT),sorts(DEFAULT),freeTextSearch", "pageSize": "20", "lang": "en", "curr": "USD"}))
    yield req("sap-commerce", "POST", "/occ/v2/electronics/users/current/carts/00001234/entries", q({"lang": "en", "curr": "USD"}), {**JSONH, "Authorization": "Bearer 7f3a1c2b-9d8e-4f6a-b5c4-3d2e1f0a9b8c"},
              {"product": {"code": "1934793"}, "quantity": 1})
    yield req("sap-commerce", "POST", "/electronics/en/USD/cart/add", "", FORM, q({"qty": "1", "productCodePost": "1934793", "CSRFToken": "a1b2c3d4-e5f6-7a8b-9c0d-e1f2a3b4c5d6"}))
    yield req("sap-commerce", "POST", "/backoffice/zkau", "", FORM,
              q({"dtid": "z_k3v", "cmd_0": "onClick", "opt_0": "i", "uuid_0": "z_k3v_c2", "data_0": json.dumps({"pageX": 512, "pageY": 300, "which": 1, "x": 40, "y": 12})}))
    yield req("sap-commerce", "GET", "/occ/v2/electronics/users/current/orders", q({"fields": "orders(code,status,placed,total(FORMATTED)),pagination", "currentPage": "0", "sort": "byDate", "statuses": "COMPLETED,CANCELLED"}))

def salesforce():
    ctx = json.dumps({"mode": "PROD", "fwuid": "MlBGcUpjZ3VBZkRTeXRYRlpkUDZ3dzJMOHp3Z0VhdkF2ZkxfZGhjVjZqdmcxMC4zMi4xLTAuMC4wLjAuMw", "app": "siteforce:communityApp",
                      "loaded": {"APPLICATION@markup://siteforce:communityApp": "1187_iuGhZ9dOB1PUW-yIfVj8Ng"}, "dn": [], "globals": {}, "uad": False})
    msg = json.dumps({"actions": [{"id": "123;a", "descriptor": "serviceComponent://ui.force.components.controllers.hostConfig.HostConfigController/ACTION$getConfigData", "callingDescriptor": "UNKNOWN", "params": {}},
                                  {"id": "124;a", "descriptor": "apex://CaseController/ACTION$createCase", "callingDescriptor": "markup://c:caseForm", "params": {"subject": "Can't log in -- 'invalid session' error", "description": "Steps: 1) open /s/login 2) enter email & password 3) error \"Select a valid option\""}}]})
    yield req("salesforce", "POST", "/s/sfsites/aura", q({"r": "7", "other.HostConfig.getConfigData": "1"}), FORM,
              q({"message": msg, "aura.context": ctx, "aura.pageURI": "/s/contactsupport?language=en_US", "aura.token": "null"}))
    yield req("salesforce", "POST", "/apexremote", "", JSONH,
              {"action": "AccountRemoter", "method": "getAccount", "data": ["Acme & Co (EMEA)"], "type": "rpc", "tid": 2,
               "ctx": {"csrf": "VmpFPSxNakF5TkMweE1pMHhNRlF4TURvek5Eb3hOeTR3TURCYSxfRnU", "vid": "06641000000Xyz1", "ns": "", "ver": 59, "authorization": ""}})
    yield req("salesforce", "GET", "/lightning/o/Account/list", q({"filterName": "Recent", "0.source": "alohaHeader"}))
    yield req("salesforce", "GET", "/services/apexrest/v1/orders", q({"status": "Draft", "orderBy": "CreatedDate", "dir": "desc", "limit": "50"}))

GRAPHQL = [
    ("GetViewer", "query GetViewer { viewer { login name avatarUrl(size: 64) } }", {}),
    ("RepoIssues", "query RepoIssues($owner: String!, $name: String!, $first: Int = 20) {\n  repository(owner: $owner, name: $name) {\n    issues(first: $first, orderBy: {field: CREATED_AT, direction: DESC}, filterBy: {states: OPEN}) {\n      nodes { number title author { login } labels(first: 5) { nodes { name } } }\n    }\n  }\n}", {"owner": "acme", "name": "web"}),
    ("AddToCart", "mutation AddToCart($cartId: ID!, $lines: [CartLineInput!]!) {\n  cartLinesAdd(cartId: $cartId, lines: $lines) { cart { id totalQuantity } userErrors { field message } }\n}", {"cartId": "gid://shopify/Cart/c1-abc", "lines": [{"merchandiseId": "gid://shopify/ProductVariant/123", "quantity": 1}]}),
    ("Search", "query Search($q: String!) { search(query: $q, type: REPOSITORY, first: 10) { edges { node { ... on Repository { nameWithOwner stargazerCount } } } } }", {"q": "select language:sql stars:>100"}),
    ("UpdateProfile", "mutation UpdateProfile($input: UpdateProfileInput!) { updateProfile(input: $input) { user { id bio } } }", {"input": {"bio": "Backend dev. I <3 Postgres, Rust & bash one-liners; opinions my own (or my cat's)."}}),
    ("Feed", "query Feed($after: String) { feed(first: 10, after: $after, where: {OR: [{type: {eq: POST}}, {type: {eq: SHARE}}]}, order: {createdAt: DESC}) { edges { node { id ...PostFields } } } }\nfragment PostFields on Post { title body createdAt author { name } }", {"after": "YXJyYXljb25uZWN0aW9uOjk="}),
    ("Hasura", "query Orders($where: orders_bool_exp!) { orders(where: $where, order_by: {created_at: desc}, limit: 20) { id total status } }", {"where": {"_and": [{"status": {"_in": ["paid", "shipped"]}}, {"total": {"_gte": 10}}, {"customer": {"email": {"_ilike": "%@example.com"}}}]}}),
    ("Contentful", "query { blogPostCollection(where: { slug: \"select-the-right-plan\", OR: [{ title_contains: \"pricing\" }, { tags_contains_some: [\"plans\"] }] }, order: [publishDate_DESC], limit: 1) { items { title body { json } } } }", {}),
]

def graphql():
    for name, query, variables in GRAPHQL:
        yield req("graphql", "POST", "/graphql", "", {**JSONH, "Authorization": "Bearer " + jwt({"sub": "user_123", "scope": "read write", "exp": 1733700000})},
                  {"operationName": name if not query.startswith("query {") else None, "query": query, "variables": variables})
    yield req("graphql", "GET", "/graphql", q({"operationName": "Feed", "variables": json.dumps({"after": None}), "extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash": "ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"}})}))

COMMENTS = [
    "Repro:\n```sql\nSELECT id, email FROM users WHERE created_at > now() - interval '1 day' ORDER BY id DESC LIMIT 10;\n```\nreturns nothing on staging.",
    "Fixed by running `rm -rf node_modules && npm ci` — the lockfile was stale.",
    "The template prints `{{ user.first_name }}` but the email shows `{{ user.firstName }}`; looks like a casing bug.",
    "Set `PATH=$PATH:$HOME/.cargo/bin` in your `~/.bashrc` and reopen the terminal.",
    "Docs: [Getting started](https://docs.example.com/start?lang=en#install) and ![diagram](https://cdn.example.com/img/arch.png)",
    "<details><summary>Full log</summary>\n\n```\nERROR 2024-12-07T10:11:12Z worker[3]: job 42 failed: timeout after 30s\n```\n</details>",
    "Stack trace:\n```\njava.lang.NullPointerException: Cannot invoke \"String.length()\" because \"name\" is null\n\tat com.example.UserService.find(UserService.java:42)\n\tat com.example.Api.get(Api.java:17)\n```",
    "Traceback (most recent call last):\n  File \"/app/main.py\", line 3, in <module>\n    import requests\nModuleNotFoundError: No module named 'requests'",
    "Try:\n```bash\ncurl -s -X POST https://api.example.com/v1/items -H 'Content-Type: application/json' -d '{\"name\":\"x\"}' | jq .id\n```",
    "In React you can write `<Button onClick={() => setOpen(true)}>Open</Button>` instead of binding in the constructor.",
    "Use `git log --oneline --graph --decorate | head -20` to see it.",
    "LGTM :shipit: — one nit: `if (a < b && b > c)` reads better as `a < b && c < b`.",
    "The regex `^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$` rejects `o'brien@example.ie`.",
    "PowerShell: `Get-ChildItem -Path C:\\Logs -Filter *.log | Sort-Object LastWriteTime -Descending | Select-Object -First 5`",
    "Markdown table:\n\n| key | value |\n|---|---|\n| `timeout` | `30s` |\n| `retries` | `3` |",
    "> Select the option you want (or leave it blank)\n\nQuoted from the spec; this is what the UI should show.",
    "Could the `${env}` placeholder in `config/${env}.yml` be documented?",
    "Works for me with `docker run --rm -it -v $(pwd):/src -w /src rust:1.83 cargo test`",
]

def comments():
    for i, c in enumerate(COMMENTS):
        yield req("issue-tracker", "POST", "/api/v4/projects/42/issues/%d/notes" % (100 + i), "", {**JSONH, "PRIVATE-TOKEN": "glpat-abcdefghijklmnop"}, {"body": c})
        yield req("issue-tracker", "POST", "/rest/api/2/issue/WEB-%d/comment" % (100 + i), "", JSONH, {"body": c, "visibility": {"type": "role", "value": "Developers"}})
        yield req("issue-tracker", "POST", "/discussions/new", "", FORM, q({"authenticity_token": "kZ5u1n2b3v4c5x6z7", "discussion[title]": "Question about setup", "discussion[body]": c}))

SEARCHES = [
    "東京 ホテル 安い", "北京 烤鸭 推荐", "کتاب های فارسی", "купить зимние шины 205/55 R16", "חנות ספרים בתל אביב",
    "दिल्ली मौसम आज", "서울 맛집 추천", "ร้านกาแฟ กรุงเทพ", "Schuhe „Größe 42“ günstig", "l'été à Paris: que faire ?",
    "İstanbul'da kahvaltı", "phở bò ngon ở Hà Nội", "\"exact phrase\" -exclude site:example.com", "price:<100 tag:sale",
    "tag:c++ OR tag:c#", "AT&T unlimited plan", "rock & roll hall of fame", "1/2\" drill bit", "5' 10\" in cm",
    "O'Reilly books on SQL", "it's \"the best\" (really)", "select comfort mattress", "union station to times square",
    "drop shipping suppliers", "where to exec shred documents near me", "and/or vs or", "C:\\Program Files (x86) missing",
    "50% off & free shipping", "<3 emoji meaning", "what is ${} in javascript", "how to escape ' in sql", "script writing course",
    "alert fatigue in on-call teams", "javascript: the good parts", "cat /etc/hosts windows equivalent", "1 + 1 = 2 proof",
    "ñandú", "Œuvres complètes", "São Paulo ↔ Rio", "¿qué hora es?", "naïve café résumé",
]

def searches():
    for s in SEARCHES:
        yield req("search", "GET", "/search", q({"q": s, "page": "1"}))
        yield req("search", "POST", "/1/indexes/*/queries", q({"x-algolia-agent": "Algolia for JavaScript (4.24.0); Browser (lite)", "x-algolia-application-id": "ABC123DEF"}), JSONH,
                  {"requests": [{"indexName": "products", "params": "query=" + up.quote(s) + "&hitsPerPage=20&facetFilters=%5B%5B%22brand%3AAcme%22%5D%5D"}]})

def beacons():
    for page, title in [("/shop/men/shoes?sort=price-desc&size=42", "Men's Shoes | Shop – Acme & Co"),
                        ("/blog/select-the-right-plan", "Select the right plan (or not) — Acme Blog"),
                        ("/checkout/step-2?utm_source=newsletter&utm_medium=email&utm_campaign=black_friday_2024", "Checkout: Shipping | Acme")]:
        url = "https://www.example.com" + page
        yield req("analytics", "POST", "/g/collect", q({"v": "2", "tid": "G-ABC123XYZ", "gtm": "45je4c20v9", "_p": "1733600000123", "gcd": "13l3l3l3l1l1", "npa": "0", "dma": "0",
            "cid": "1234567890.1733600000", "ul": "en-gb", "sr": "1920x1080", "uaa": "arm", "uab": "64", "uafvl": "Chromium;130.0.6723.70|Google%20Chrome;130.0.6723.70|Not?A_Brand;99.0.0.0",
            "uamb": "0", "uam": "", "uap": "macOS", "uapv": "14.5.0", "uaw": "0", "are": "1", "frm": "0", "pscdl": "noapi", "_s": "2", "sid": "1733600000", "sct": "3", "seg": "1",
            "dl": url, "dr": "https://www.google.com/", "dt": title, "en": "view_item_list", "ep.item_list_name": "Search results: men's shoes (size 42)", "epn.value": "129.99", "tfd": "1532"}))
        yield req("analytics", "GET", "/gtm.js", q({"id": "GTM-ABCD123", "l": "dataLayer", "gtm_auth": "xYz123", "gtm_preview": "env-5", "gtm_cookies_win": "x"}))
        yield req("analytics", "GET", "/tr/", q({"id": "123456789012345", "ev": "ViewContent", "dl": url, "rl": "https://www.google.com/", "if": "false", "ts": "1733600000123",
            "cd[content_ids]": "[\"SKU-123\",\"SKU-456\"]", "cd[content_type]": "product", "cd[value]": "129.99", "cd[currency]": "GBP", "sw": "1920", "sh": "1080", "v": "2.9.176", "r": "stable",
            "ec": "1", "o": "4126", "fbp": "fb.1.1733600000123.1234567890", "it": "1733600000000", "coo": "false", "rqm": "GET"}))
        yield req("analytics", "GET", "/matomo.php", q({"action_name": title.replace(" | ", " › "), "idsite": "1", "rec": "1", "r": "123456", "h": "10", "m": "2", "s": "3", "url": url,
            "_id": "a1b2c3d4e5f60718", "_idn": "0", "send_image": "0", "_refts": "0", "pv_id": "AbC123", "pf_net": "0", "pf_srv": "35", "pdf": "1", "qt": "0", "realp": "0", "wma": "0",
            "fla": "0", "java": "0", "ag": "0", "cookie": "1", "res": "1920x1080",
            "uadata": json.dumps({"fullVersionList": [{"brand": "Chromium", "version": "130.0.6723.70"}, {"brand": "Not?A_Brand", "version": "99.0.0.0"}], "mobile": False, "model": "", "platform": "macOS", "platformVersion": "14.5.0"})}))
        yield req("analytics", "POST", "/api/2/httpapi", "", JSONH, {"api_key": "0123456789abcdef", "events": [{"user_id": "u-42", "device_id": "d-1", "event_type": "Viewed Page", "time": 1733600000123,
            "event_properties": {"path": page, "title": title, "referrer": "https://www.google.com/"}, "user_properties": {"$set": {"plan": "pro"}, "$add": {"visits": 1}}}]})
        yield req("analytics", "POST", "/api/v2/rum", q({"ddsource": "browser", "ddtags": "sdk_version:5.23.0,api:fetch,env:prod,service:web,version:1.2.3", "dd-api-key": "pub0123456789abcdef0123456789abcdef", "dd-evp-origin-version": "5.23.0", "dd-evp-origin": "browser", "dd-request-id": "7c1e0f3a-2b4d-4e6f-8a9b-0c1d2e3f4a5b"}),
                  {"Content-Type": "text/plain;charset=UTF-8"},
                  json.dumps({"type": "error", "date": 1733600000123, "view": {"url": url, "referrer": "https://www.google.com/"},
                              "error": {"message": "Uncaught TypeError: Cannot read properties of undefined (reading 'map')", "source": "source",
                                        "stack": "TypeError: Cannot read properties of undefined (reading 'map')\n    at ProductList (https://www.example.com/_next/static/chunks/app/page-3f2a1b.js:1:2345)\n    at renderWithHooks (https://www.example.com/_next/static/chunks/framework-0c1d2e.js:9:6789)"}}) + "\n" +
                  json.dumps({"type": "action", "action": {"type": "click", "target": {"name": "Select size (or see size guide)"}}}))
        yield req("analytics", "POST", "/b/ss/acmeprod/1/JS-2.26.0/s1234567890", "", FORM,
                  q({"AQB": "1", "ndh": "1", "pf": "1", "t": "7/11/2024 10:11:12 6 0", "c.": "", "a.": "", "activitymap.": "", "page": "Product Detail", "link": "Add to bag", "region": "main",
                     "pageIDType": "1", ".activitymap": "", ".a": "", ".c": "", "pageName": title, "g": url, "r": "https://www.google.com/", "v1": "D=pageName", "c10": "shoes|men|running", "events": "scAdd,event5=129.99", "products": ";SKU-123;1;129.99;;eVar5=size 42|eVar6=red", "AQE": "1"}))

def oauth():
    id_token = jwt({"iss": "https://login.example.com/", "sub": "auth0|5f1e8c2a9b7d", "aud": "aBcD1234", "exp": 1733700000, "iat": 1733600000, "nonce": "n-0S6_WzA2Mj", "name": "Seán O'Connor", "email": "sean@example.ie", "picture": "https://cdn.example.com/avatars/s.png?size=64&default=identicon"})
    state = b64u(json.dumps({"returnTo": "/account/orders?status=open&sort=-date", "csrf": "af0ifjsldkj", "redirect_uri": "https://app.example.com/callback"}).encode())
    yield req("oauth", "GET", "/authorize", q({"response_type": "code", "client_id": "aBcD1234", "redirect_uri": "https://app.example.com/callback", "scope": "openid profile email offline_access",
        "state": state, "nonce": "n-0S6_WzA2Mj", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256", "prompt": "login", "ui_locales": "en-GB fr"}))
    yield req("oauth", "GET", "/callback", q({"code": "SplxlOBeZQQYbYS6WxSbIA", "state": state, "session_state": "8f3b2c1d-7a6e.5d4c3b2a"}))
    yield req("oauth", "POST", "/callback", "", FORM, q({"id_token": id_token, "state": state, "session_state": "8f3b2c1d"}))
    yield req("oauth", "POST", "/oauth/token", "", FORM, q({"grant_type": "authorization_code", "code": "SplxlOBeZQQYbYS6WxSbIA", "redirect_uri": "https://app.example.com/callback",
        "client_id": "aBcD1234", "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"}))
    yield req("oauth", "GET", "/v2/logout", q({"id_token_hint": id_token, "post_logout_redirect_uri": "https://app.example.com/?logged_out=1", "client_id": "aBcD1234"}))
    yield req("oauth", "GET", "/common/oauth2/v2.0/authorize", q({"client_id": "6731de76-14a6-49ae-97bc-6eba6914391e", "response_type": "code id_token", "redirect_uri": "https://app.example.com/signin-oidc",
        "response_mode": "form_post", "scope": "openid profile offline_access https://graph.microsoft.com/.default", "state": "OpenIdConnect.AuthenticationProperties=" + b64u(b"\x01\x00\x00\x00.redirect/dashboard"), "nonce": "638690000000000000.YjA1"}))
    saml = base64.b64encode(('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_8e8dc5f69a98cc4c1ff3427e5ce34606fd672f91e6" Version="2.0" IssueInstant="2024-12-07T10:11:12Z" Destination="https://app.example.com/saml/acs">'
                             '<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">https://idp.example.com</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:Response>').encode()).decode()
    yield req("oauth", "POST", "/saml/acs", "", FORM, q({"SAMLResponse": saml, "RelayState": "https://app.example.com/dashboard?tab=billing"}))
    # Native apps (CLIs, desktop) redirect to a loopback port (RFC 8252 7.3): gcloud, gh, az.
    for ru in ("http://127.0.0.1:51234/callback", "http://localhost:8085/", "http://[::1]:49152/oauth2/callback"):
        yield req("oauth", "GET", "/authorize", q({"response_type": "code", "client_id": "cli-app", "redirect_uri": ru,
            "scope": "openid offline_access", "state": "xyzABC123", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256"}))
    yield req("oauth", "GET", "/login", q({"returnTo": "/dashboard?tab=settings&panel=security", "next": "https://app.example.com/welcome#step-2", "continue": "/checkout/?step=payment"}))

def main(out):
    with open(out, "w") as f:
        for gen in (wordpress, woocommerce, shopify, magento, sitecore, sap_commerce, salesforce, graphql, comments, searches, beacons, oauth):
            for r in gen():
                f.write(json.dumps(r, ensure_ascii=False) + "\n")

if __name__ == "__main__":
    main(os.path.join(os.path.dirname(os.path.abspath(__file__)), "benign-platforms-s12.jsonl"))
