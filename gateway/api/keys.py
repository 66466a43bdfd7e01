"""The typed keys under which the HTTP entry point (gateway.app) publishes the
running parts to the route modules. Types only: importing this opens nothing."""

from __future__ import annotations

from aiohttp import web

from gateway.blobs import Blobs
from gateway.bootstrap import Gateway, Overrides, PartnersHolder
from gateway.config import Settings
from gateway.db.engine import Database
from gateway.delivery import OutboxSender
from gateway.intake import Intake
from gateway.metrics import Metrics
from gateway.pipeline import Pipeline
from gateway.rawstore import RawStore

SETTINGS = web.AppKey("settings", Settings)
OVERRIDES = web.AppKey("overrides", Overrides)
PARTNERS = web.AppKey("partners", PartnersHolder)
METRICS = web.AppKey("metrics", Metrics)
GATEWAY = web.AppKey("gateway", Gateway)
DATABASE = web.AppKey("database", Database)
RAWSTORE = web.AppKey("rawstore", RawStore)
BLOBS = web.AppKey("blobs", Blobs)  # inbound payloads: rows and files (gateway.blobs)
INTAKE = web.AppKey("intake", Intake)
PIPELINE = web.AppKey("pipeline", Pipeline)
DELIVERY = web.AppKey("partner_delivery", OutboxSender)
API_TOKEN = web.AppKey("api_token", str)
