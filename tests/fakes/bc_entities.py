"""Standard BC API v2.0 entities beside customers: vendors, items, salesOrders and their
salesOrderLines, a few realistic rows each, read-only.

Field names and shapes are those of Microsoft's API v2.0 reference (the vendor, item,
salesOrder and salesOrderLine resource types). They are served as customers are: paging
with `@odata.nextLink`, `$filter`, `$select`, `$top`, `$orderby`, an `@odata.etag` on every
row, one row by id, and for an unknown id a 404 in BC's error shape. Lines are reached as BC
documents it: `salesOrders({id})/salesOrderLines` and `salesOrderLines` of the company. The
rows are made from the company's position, so each company has its own ids. Writes answer
405: these exist for reading, testing endpoints and exporting.
"""

import base64
from datetime import UTC, date, datetime, timedelta

from .http import json_response

ZERO = "00000000-0000-0000-0000-000000000000"
MODIFIED = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

# Number, name, city, state, postal code, phone, email of each vendor (CRONUS's own).
VENDORS = (
    ("10000", "Fabrikam, Inc.", "Atlanta", "GA", "31772", "+1 425 555 0101", "fabrikam"),
    ("20000", "First Up Consultants", "Chicago", "IL", "61236", "+1 312 555 0102", "firstup"),
    ("30000", "Graphic Design Institute", "Atlanta", "GA", "31772", "+1 404 555 0103", "gdi"),
    ("40000", "Wide World Importers", "Miami", "FL", "37125", "+1 305 555 0104", "wwi"),
    ("50000", "Nod Publishers", "Seattle", "WA", "98101", "+1 206 555 0105", "nod"),
)
# Number, description, unit price, unit cost, inventory of each item.
ITEMS = (
    ("1896-S", "ATHENS Desk", 1000.8, 780.7, 24),
    ("1900-S", "PARIS Guest Chair, black", 192.8, 150.4, 96),
    ("1906-S", "ATHENS Mobile Pedestal", 281.4, 219.5, 12),
    ("1908-S", "LONDON Swivel Chair, blue", 190.1, 148.3, 40),
    ("1920-S", "ANTWERP Conference Table", 649.4, 506.5, 7),
    ("1996-S", "ATLANTA Whiteboard, base", 1397.3, 1089.9, 0),
)
# Per order: the customer's position, and (item index, quantity) of each line.
ORDERS = (
    (0, ((0, 2), (1, 8))),
    (1, ((4, 1), (1, 10), (5, 1))),
    (2, ((3, 4),)),
    (0, ((2, 3), (0, 1))),
)
TAX_PERCENT = 6.0
# What BC calls the table of each entity in its "does not exist" error.
CAPTIONS = {
    "vendors": "Vendor",
    "items": "Item",
    "salesOrders": "Sales Header",
    "salesOrderLines": "Sales Line",
}


def _etag(key, version=1):
    raw = f"{len(key)};{key};{version};".encode()
    return 'W/"' + base64.b64encode(raw).decode() + '"'


def _stamp(moment):
    return moment.isoformat().replace("+00:00", "Z")


def _id(company, kind, index):
    """A stable GUID per company, entity kind (a hex digit) and row."""
    return f"{index + 1:08x}-{company.index:04x}-4{kind:03x}-8000-0000000b0e{kind:02x}"


def vendor(company, index):
    number, name, city, state, postal_code, phone, mailbox = VENDORS[index]
    row_id = _id(company, 1, index)
    return {
        "@odata.etag": _etag(row_id),
        "id": row_id,
        "number": number,
        "displayName": name,
        "addressLine1": f"{(index + 1) * 117} Commerce Street",
        "addressLine2": "",
        "city": city,
        "state": state,
        "country": "US",
        "postalCode": postal_code,
        "phoneNumber": phone,
        "email": f"accounts@{mailbox}.example.com",
        "website": f"www.{mailbox}.example.com",
        "taxRegistrationNumber": "",
        "currencyId": ZERO,
        "currencyCode": "USD",
        "irs1099Code": "",
        "paymentTermsId": ZERO,
        "paymentMethodId": ZERO,
        "taxLiable": True,
        "blocked": " ",
        "balance": round(1250.5 * (index + 1), 2),
        "lastModifiedDateTime": _stamp(MODIFIED + timedelta(hours=index)),
    }


def item(company, index):
    number, name, price, cost, inventory = ITEMS[index]
    row_id = _id(company, 2, index)
    return {
        "@odata.etag": _etag(row_id),
        "id": row_id,
        "number": number,
        "displayName": name,
        "displayName2": "",
        "type": "Inventory",
        "itemCategoryId": ZERO,
        "itemCategoryCode": "FURNITURE",
        "blocked": False,
        "gtin": "",
        "inventory": inventory,
        "unitPrice": price,
        "priceIncludesTax": False,
        "unitCost": cost,
        "taxGroupId": ZERO,
        "taxGroupCode": "FURNITURE",
        "baseUnitOfMeasureId": ZERO,
        "baseUnitOfMeasureCode": "PCS",
        "generalProductPostingGroupId": ZERO,
        "generalProductPostingGroupCode": "RETAIL",
        "inventoryPostingGroupId": ZERO,
        "inventoryPostingGroupCode": "RESALE",
        "lastModifiedDateTime": _stamp(MODIFIED + timedelta(hours=index)),
    }


def order_lines(company, order_index):
    """The lines of order `order_index`, numbered 10000, 20000... as BC numbers them."""
    order_id = _id(company, 3, order_index)
    lines = []
    for position, (item_index, quantity) in enumerate(ORDERS[order_index][1]):
        sold = item(company, item_index)
        amount = round(sold["unitPrice"] * quantity, 2)
        tax = round(amount * TAX_PERCENT / 100, 2)
        line_id = _id(company, 4, order_index * 100 + position)
        lines.append(
            {
                "@odata.etag": _etag(line_id),
                "id": line_id,
                "documentId": order_id,
                "sequence": (position + 1) * 10000,
                "itemId": sold["id"],
                "accountId": ZERO,
                "lineType": "Item",
                "lineObjectNumber": sold["number"],
                "description": sold["displayName"],
                "description2": "",
                "unitOfMeasureId": ZERO,
                "unitOfMeasureCode": "PCS",
                "quantity": quantity,
                "unitPrice": sold["unitPrice"],
                "discountAmount": 0,
                "discountPercent": 0,
                "discountAppliedBeforeTax": False,
                "amountExcludingTax": amount,
                "taxCode": "FURNITURE",
                "taxPercent": TAX_PERCENT,
                "totalTaxAmount": tax,
                "amountIncludingTax": round(amount + tax, 2),
                "invoiceDiscountAllocation": 0,
                "netAmount": amount,
                "netTaxAmount": tax,
                "netAmountIncludingTax": round(amount + tax, 2),
                "shipmentDate": _order_date(order_index).isoformat(),
                "shippedQuantity": 0,
                "invoicedQuantity": 0,
                "invoiceQuantity": quantity,
                "shipQuantity": quantity,
                "itemVariantId": ZERO,
                "locationId": ZERO,
            }
        )
    return lines


def _order_date(order_index):
    return date(2026, 1, 12) + timedelta(days=7 * order_index)


def sales_order(company, index):
    customer = company.generate(ORDERS[index][0])
    lines = order_lines(company, index)
    excluding = round(sum(line["amountExcludingTax"] for line in lines), 2)
    tax = round(sum(line["totalTaxAmount"] for line in lines), 2)
    row_id = _id(company, 3, index)
    address = {
        f"{prefix}{field}": customer[source]
        for prefix in ("sellTo", "billTo", "shipTo")
        for field, source in (
            ("AddressLine1", "addressLine1"),
            ("AddressLine2", "addressLine2"),
            ("City", "city"),
            ("Country", "country"),
            ("State", "state"),
            ("PostCode", "postalCode"),
        )
    }
    ordered = _order_date(index)
    return {
        "@odata.etag": _etag(row_id),
        "id": row_id,
        "number": f"S-ORD{101001 + index}",
        "externalDocumentNumber": f"PO-{4711 + index}",
        "orderDate": ordered.isoformat(),
        "postingDate": ordered.isoformat(),
        "customerId": customer["id"],
        "customerNumber": customer["number"],
        "customerName": customer["displayName"],
        "billToName": customer["displayName"],
        "billToCustomerId": customer["id"],
        "billToCustomerNumber": customer["number"],
        "shipToName": customer["displayName"],
        "shipToContact": "",
        **address,
        "shortcutDimension1Code": "",
        "shortcutDimension2Code": "",
        "currencyId": ZERO,
        "currencyCode": "USD",
        "pricesIncludeTax": False,
        "paymentTermsId": ZERO,
        "shipmentMethodId": ZERO,
        "salesperson": "PS",
        "partialShipping": True,
        "requestedDeliveryDate": (ordered + timedelta(days=14)).isoformat(),
        "discountAmount": 0,
        "discountAppliedBeforeTax": False,
        "totalAmountExcludingTax": excluding,
        "totalTaxAmount": tax,
        "totalAmountIncludingTax": round(excluding + tax, 2),
        "fullyShipped": False,
        "status": "Open" if index % 2 == 0 else "Released",
        "lastModifiedDateTime": _stamp(MODIFIED + timedelta(days=7 * index)),
        "phoneNumber": customer["phoneNumber"],
        "email": customer["email"],
    }


def rows(company, name, order_id=None):
    """Every row of entity set `name` in `company` (of one order, for its lines)."""
    if name == "vendors":
        return [vendor(company, index) for index in range(len(VENDORS))]
    if name == "items":
        return [item(company, index) for index in range(len(ITEMS))]
    if name == "salesOrders":
        return [sales_order(company, index) for index in range(len(ORDERS))]
    lines = [line for index in range(len(ORDERS)) for line in order_lines(company, index)]
    return [line for line in lines if order_id is None or line["documentId"] == order_id]


def answer(bc, company, names, keys, method, request):
    """BC's answer to `names`/`keys` under a company, or None when no entity here serves it.

    `names` and `keys` are the path's segments after `companies(...)`, e.g.
    ["salesOrders", "salesOrderLines"] with keys [order id, None].
    """
    from .bc import BCError  # The fake BC imports this module; its error type comes back.

    shape = tuple(names)
    if shape not in (
        ("vendors",),
        ("items",),
        ("salesOrders",),
        ("salesOrderLines",),
        ("salesOrders", "salesOrderLines"),
    ):
        return None
    if method != "GET":
        raise BCError(405, "BadRequest_MethodNotAllowed", f"{method} is not allowed here.")
    order_id = None
    if len(shape) == 2:
        order_id = _one(company, "salesOrders", keys[0], BCError)["id"]
    name, key = shape[-1], keys[-1]
    if key is not None:
        found = _one(company, name, key, BCError)
        if order_id is not None and found["documentId"] != order_id:
            raise _not_found(name, key.strip("'"), BCError)
        return json_response(found)
    listed = rows(company, name, order_id)
    return bc.page(request, lambda position: listed[position], len(listed))


def _one(company, name, key, error):
    row_id = (key or "").strip("'")
    for row in rows(company, name):
        if row["id"] == row_id:
            return row
    raise _not_found(name, row_id, error)


def _not_found(name, row_id, error):
    return error(
        404,
        "BadRequest_NotFound",
        f"The {CAPTIONS[name]} does not exist. Identification fields and values: Id='{row_id}'",
    )
