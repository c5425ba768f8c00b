"""The composition root: configuration, storage, plugins, rules and the services wired together.

:class:`OMS` is what the CLI, the admin API, the demo and the tests drive. It
owns no behaviour of its own: each concept lives in its package and receives
the collaborators it uses here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from .aftersales.service import Aftersales
from .channels.accounts import Accounts
from .channels.pulling import Pulling
from .channels.reports import ChannelReports
from .channels.stock_push import StockPush
from .clock import Clock
from .config import Config
from .decisions.fact_builder import FactBuilder
from .decisions.records import DecisionRecorder
from .decisions.rulebook import Rulebook
from .decisions.versions import RuleStore
from .events.sink import EVENTS, EventSink
from .freight.charges import FreightCharger
from .fulfilment import master_sync
from .fulfilment.callbacks import Callbacks
from .fulfilment.carriers import CarrierCache
from .fulfilment.dispatch import Dispatch
from .fulfilment.status_map import load_status_map
from .fulfilment.stock_documents import StockDocuments
from .invoices.export import Invoices
from .invoices.submission import SUBMITTER, Submitter
from .masterdata.blacklist import Blacklist
from .masterdata.entities import Entity
from .masterdata.service import MasterData
from .messaging.dead_letters import DeadLetters
from .messaging.notifications import Notifier
from .messaging.outbox import Kind, OutboxWriter
from .messaging.templates import check as check_template
from .orders.commands import Commands
from .orders.creation import OrderCreator
from .orders.intake import Intake
from .orders.late_steps import LateLimits
from .orders.machine import OrderMachine
from .orders.moves import Mover
from .orders.numbering import NumberGenerator
from .orders.updates import ChannelUpdates
from .orders.waits import Wait, mark_ready, stock_freed
from .payments.refund_rules import RefundRules
from .payments.refunds import Refunds
from .pipeline.backorders import BackordersStage
from .pipeline.carrier import CarrierStage
from .pipeline.documents import DocumentsStage
from .pipeline.inbox import InboxStage
from .pipeline.merge import MergeStage
from .pipeline.outbox import OutboxStage
from .pipeline.parents import ParentsStage
from .pipeline.route import RouteStage
from .pipeline.runner import Pipeline
from .pipeline.screen import ScreenStage
from .pipeline.split import SplitStage
from .pipeline.stage import StageName
from .pipeline.tasks import TasksStage
from .pipeline.timers import TimersStage
from .plugin.manager import load_plugins
from .plugin.registry import PluginRegistry, RegistryError
from .stock.batch import on_freed
from .stock.closing import Closings
from .stock.opening import Openings
from .stock.reconcile import Reconciler
from .stock.service import StockService
from .stock.warehouses import WarehouseCache
from .storage.db import Database
from .storage.migrate import require_current


class OMS:
    def __init__(self, config: Config, *, clock: Clock | None = None, extra_plugins: Sequence[str] = (),
                 require_rules: bool = True) -> None:
        """``require_rules=False`` starts even when the active rules do not validate in this process (a
        plugin they name is missing), so that new rules can be published from it."""
        self.config = config
        self._require_rules = require_rules
        self.clock = clock or Clock()
        self.db = Database(config.resolved_database_url())
        try:
            require_current(self.db.engine)
            self._wire(extra_plugins)
        except BaseException:
            self.db.dispose()
            raise

    def _wire(self, extra_plugins: Sequence[str]) -> None:
        config, clock, db = self.config, self.clock, self.db
        loaded = load_plugins([*config.plugins, *extra_plugins], base_dir=config.path("."))
        self.plugin_info = loaded.info
        self.plugins = plugins = PluginRegistry(loaded.pm, config)
        self.accounts = Accounts(config, plugins)
        for _, template in plugins.templates.items():
            check_template(template.body, name=template.key, origin=template.origin)
            check_template(template.subject, name=template.key, origin=template.origin)
        rules_dir = config.path(config.rules_dir)
        self.rulebook = rulebook = Rulebook(rules_dir, plugins)
        self.rules = RuleStore(db=db, clock=clock, rulebook=rulebook)
        self.rules.start(strict=self._require_rules)
        on_freed(stock_freed)   # stock coming in or released marks what held orders wait for (orders/waits.py)
        self.status_map = load_status_map(rules_dir / "maps" / "status.yaml")
        self.numbers = NumberGenerator(db.engine, config.number_secret, config.shard_count)
        self.warehouses = warehouses = WarehouseCache(default_wms=plugins.connectors.get(config.wms_connector).name)
        self.outbox = outbox = OutboxWriter(clock)
        # Events for downstream systems (docs/events.md): none unless config events names their connector. The
        # ledgers find the sink on their session, deep inside payments, cancellations and stock documents.
        self.events = events = EventSink.configured(config.events, plugins, outbox)
        if events is not None:
            db.lend(EVENTS, events)
        self.facts = facts = FactBuilder(rulebook, plugins, clock)
        self.decisions = decisions = DecisionRecorder(clock, plugins)
        self.notifier = Notifier(rulebook, plugins, facts, outbox, decisions, quiet=config.quiet_hours)
        self.carriers = carriers = CarrierCache(default_connector=plugins.connectors.get(config.carrier_connector).name)

        def wms_for(s: Session, warehouse: str) -> str:
            return warehouses.wms(s, warehouse).connector

        def carrier_for(s: Session, carrier: str | None) -> str:
            return carriers.route(s, carrier).connector

        self.machine = machine = OrderMachine(clock=clock, timeouts=config.timeouts, outbox=outbox,
                                              refunds=Refunds(outbox, config.payment_connector),
                                              notifier=self.notifier, observe=plugins.after_transition,
                                              wms_for=wms_for, carrier_for=carrier_for,
                                              late=LateLimits.from_config(config), events=events,
                                              reports=ChannelReports.configured(self.accounts, plugins, outbox))
        # What the shops are told of their orders (channels/reports.py): none unless an account reports.
        self.reports = reports = machine.reports
        self.mover = mover = Mover(machine=machine, decisions=decisions, active=warehouses.get,
                                   shelf_life=config.min_shelf_life_days)
        self.callbacks = callbacks = Callbacks(clock, plugins, self.status_map, machine, mover)
        creator = OrderCreator(clock=clock, plugins=plugins, numbers=self.numbers, machine=machine,
                               warehouses=self.warehouses, freight=FreightCharger(rulebook), decisions=decisions)
        self.intake = Intake(db=db, clock=clock, plugins=plugins, numbers=self.numbers, creator=creator,
                             accounts=self.accounts)
        self.pulling = Pulling(db=db, clock=clock, accounts=self.accounts, plugins=plugins, intake=self.intake)
        self.stock_push = StockPush(db=db, clock=clock, accounts=self.accounts, rulebook=rulebook, outbox=outbox)
        self.masterdata = MasterData(db=db, clock=clock, checks={"warehouses": self._check_warehouse})
        self.masterdata.on_change.append(self._master_changed)
        self.openings = Openings(db=db, clock=clock)
        self.blacklist = Blacklist(db=db, clock=clock)
        self.stock = StockService(db=db, clock=clock)
        self.dead_letters = DeadLetters(db=db, clock=clock)
        self.reconciler = Reconciler(db=db, clock=clock)
        self.closings = Closings(db=db, clock=clock)
        plugins.einvoice_formats.get(config.einvoice_format)   # an unknown format is refused at start
        if config.tax_connector and plugins.connectors.get(config.tax_connector).kind != "tax":
            raise RegistryError(f"tax_connector: connector '{config.tax_connector}' is not a tax platform's")
        # Every invoice issued in a session of this database has its e-invoice queued for the tax platform in
        # that transaction (invoices/submission.py): issuing runs inside payments, cancellations and after-sales.
        self.submitter = submitter = Submitter(outbox=outbox, connector=config.tax_connector, plugins=plugins,
                                               fmt=config.einvoice_format)
        db.lend(SUBMITTER, submitter)
        self.invoices = Invoices(db=db, plugins=plugins, default_format=config.einvoice_format, submitter=submitter,
                                 clock=clock, batch_size=config.batch_size)
        self.documents = StockDocuments(db=db, clock=clock, outbox=outbox, warehouses=warehouses,
                                        wants_master_data=self._wants_master_data)
        self.commands = Commands(db=db, clock=clock, machine=machine, plugins=plugins, warehouses=self.warehouses,
                                 mover=mover)
        # What a channel says of an order after it sent it is applied through the commands a person would use.
        self.updates = self.intake.updates = ChannelUpdates(db=db, clock=clock, commands=self.commands)
        refunds = machine.refunds
        assert refunds is not None
        if reports is not None:
            refunds.channels, reports.refunds = reports, refunds
        self.aftersales = aftersales = Aftersales(db=db, clock=clock, rulebook=rulebook, facts=facts,
                                                  decisions=decisions, refunds=refunds, documents=self.documents,
                                                  creator=creator, machine=machine,
                                                  rules_in_force=self.rules.refresh_in)
        machine.on_replacement = aftersales.replacement_moved
        # A case's goods reported back and its refunds paid move it on (aftersales/service.py).
        callbacks.on_return = aftersales.returned
        refunds.on_case_refund = aftersales.refunds_settled
        refunds.rules = RefundRules(rulebook=rulebook, facts=facts, decisions=decisions,
                                    rules_in_force=self.rules.refresh_in)
        n, retry = config.batch_size, config.timeouts.outbox_retry_seconds
        # Reports to the shops go apart, like e-invoices: a marketplace answering slowly holds back nothing else.
        apart = frozenset({Kind.TAX.value} | ({Kind.CHANNEL.value} if reports is not None else set()))
        to_shops: tuple[Any, ...] = () if reports is None else (
            OutboxStage(batch_size=n, clock=clock, dispatch=Dispatch(machine=machine, facts=facts), plugins=plugins,
                        callbacks=callbacks, warehouses=warehouses, carriers=carriers, retry_seconds=retry,
                        kinds=frozenset({Kind.CHANNEL.value}), name=StageName.CHANNELS, reports=reports),)
        decide = dict(batch_size=n, facts=facts, rulebook=rulebook, decisions=decisions, machine=machine,
                      rules_in_force=self.rules.refresh_in)
        # The pass runs the stages in this order; each step of the order flow (orders/flow.py) has its stage.
        self.pipeline = Pipeline(db=db, clock=clock, machine=machine, retry_seconds=retry, stages=(
            TimersStage(batch_size=n, clock=clock, facts=facts, machine=machine),
            TasksStage(batch_size=n, clock=clock, plugins=plugins, callbacks=callbacks, retry_seconds=retry),
            InboxStage(batch_size=n, facts=facts, callbacks=callbacks),
            BackordersStage(batch_size=n, clock=clock, machine=machine, plugins=plugins, warehouses=warehouses),
            ScreenStage(**decide),
            SplitStage(**decide, clock=clock, plugins=plugins, warehouses=self.warehouses),
            RouteStage(**decide, clock=clock, plugins=plugins, warehouses=self.warehouses,
                       shelf_life=config.min_shelf_life_days),
            merge := MergeStage(**decide, clock=clock),
            carrier := CarrierStage(**decide, clock=clock, plugins=plugins, warehouses=self.warehouses,
                                    carriers=carriers),
            documents := DocumentsStage(batch_size=n, outbox=outbox, wms_for=wms_for,
                                        wants_master_data=self._wants_master_data),
            OutboxStage(batch_size=n, clock=clock, dispatch=Dispatch(machine=machine, facts=facts), plugins=plugins,
                        callbacks=callbacks, warehouses=warehouses, carriers=carriers, retry_seconds=retry,
                        skip=apart),
            ParentsStage(batch_size=n, machine=machine),
            # E-invoices go apart, in batches of their own: a tax platform answering slowly holds back no
            # warehouse document or customer message, and they do not crowd those out of the pass.
            OutboxStage(batch_size=n, clock=clock, dispatch=Dispatch(machine=machine, facts=facts), plugins=plugins,
                        callbacks=callbacks, warehouses=warehouses, carriers=carriers, retry_seconds=retry,
                        kinds=frozenset({Kind.TAX.value}), name=StageName.EINVOICES),
            *to_shops,
            # Again at the end: what a connector answered while its message was sent (a tax platform's word on
            # an e-invoice, a warehouse's acknowledgement) is applied in the same pass, not one pass later.
            InboxStage(batch_size=n, facts=facts, callbacks=callbacks),
        ))
        # An order merging moves on is matched with its courier and its document queued in the same transaction;
        # the later stages take in their own what reaches their step otherwise (a group closing, a release).
        merge.then, carrier.then = carrier, documents
        # Every process decides with the active rules: a change made anywhere is picked up between passes
        # (and by each decision stage in its own transaction, see decisions/versions.py).
        self.pipeline.before_pass.append(self.rules.refresh)

    def _check_warehouse(self, record: Any) -> tuple[str, str] | None:
        name = record.wms_connector
        if name is None:
            return None
        if name not in self.plugins.connectors:
            return "wms_connector", (f"no connector '{name}' is registered "
                                     f"(known: {', '.join(self.plugins.connectors.names())})")
        if self.plugins.connectors.get(name).kind != "wms":
            return "wms_connector", f"connector '{name}' is not a WMS connector"
        return None

    def _wants_master_data(self, connector: str) -> bool:
        return connector in self.plugins.connectors and \
            bool(getattr(self.plugins.connectors.get(connector), "wants_master_data", False))

    def _master_changed(self, s: Session, entity: Entity, changed: list[Any], deactivated: list[Any]) -> None:
        if entity.plural == "warehouses":
            self.warehouses.invalidate()
        if entity.plural in ("warehouses", "carriers", "services"):
            self.carriers.invalidate()
        elif entity.plural == "skus":
            mark_ready(s, Wait.SKU, [channel_sku for _, channel_sku in changed])
        elif entity.plural == "products":
            # A channel SKU that is the catalogue's own SKU needs no mapping once the product exists.
            mark_ready(s, Wait.SKU, [sku for (sku,) in changed])
        if entity.plural in ("products", "suppliers"):
            # A warehouse that was sent an older version is sent the change, once.
            keys = [k for (k,) in [*changed, *deactivated]]
            kind = master_sync.ITEM if entity.plural == "products" else master_sync.SUPPLIER
            for warehouse, topic, payload in master_sync.changed(s, kind, keys):
                route = self.warehouses.wms(s, warehouse)
                if self._wants_master_data(route.connector):
                    self.outbox.enqueue(s, None, Kind.CONNECTOR, route.connector, topic, payload)

    def close(self) -> None:
        rulebook = getattr(self, "rulebook", None)
        if rulebook is not None:
            rulebook.close()
        reports = getattr(self, "reports", None)
        if reports is not None:
            reports.close()
        self.db.dispose()

    def __enter__(self) -> OMS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
