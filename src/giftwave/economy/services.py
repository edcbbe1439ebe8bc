"""The economy's parts, built once from settings: what the API and the CLI hold."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from giftwave.config import Settings
from giftwave.economy.catalog import Catalog, seed_default_catalog
from giftwave.economy.diamond_fractions import DiamondFractions
from giftwave.economy.fx import FxTable
from giftwave.economy.gifting import Gifting, GiftingPolicy
from giftwave.economy.limits import gift_limiter
from giftwave.economy.packages import seed_default_packages
from giftwave.economy.payees import Payees
from giftwave.economy.payout_policy import AutoApproval
from giftwave.economy.payout_transfers import PayoutTransfers, TransferPolicy
from giftwave.economy.payouts import PayoutPolicy, Payouts
from giftwave.economy.reversals import Reversals
from giftwave.economy.risk_rules import RiskRules
from giftwave.economy.spending import Spending, SpendingPolicy
from giftwave.economy.spending_reminders import Reminders
from giftwave.economy.subscription_gifts import SubscriptionGifts
from giftwave.economy.subscriptions import SubscriptionPolicy, Subscriptions
from giftwave.economy.topups import TopUpRisk, TopUps
from giftwave.economy.wallets import HUNDREDTHS_PER_DIAMOND, Wallets, WalletView
from giftwave.identity.passwords import Passwords
from giftwave.identity.users import AgeRule
from giftwave.ledger.engine import PostingEngine
from giftwave.payments.base import PaymentProvider
from giftwave.payments.payout_base import PayoutProvider


@dataclass(slots=True)
class Economy:
    settings: Settings
    db: Engine
    engine: PostingEngine
    age_rule: AgeRule
    passwords: Passwords
    wallets: Wallets
    catalog: Catalog
    gifting: Gifting
    spending: Spending
    reminders: Reminders
    topups: TopUps
    payouts: Payouts
    reversals: Reversals
    fractions: DiamondFractions
    subscriptions: Subscriptions
    subscription_gifts: SubscriptionGifts
    # With a payout provider only (GIFTWAVE_PAYOUT_PROVIDER): payees and their transfers.
    payees: Payees | None = None
    payout_transfers: PayoutTransfers | None = None

    @property
    def risk_rules(self) -> RiskRules:
        return risk_rules_of(self.settings)

    @classmethod
    def build(
        cls,
        settings: Settings,
        db: Engine,
        engine: PostingEngine,
        provider: PaymentProvider,
        payout_provider: PayoutProvider | None = None,
    ) -> Economy:
        age_rule = AgeRule(settings.min_age, dict(settings.min_age_by_country))
        wallets = Wallets(db)
        catalog = Catalog(db)
        spending = Spending(db, wallets, SpendingPolicy.configured(settings))

        gifting = Gifting(
            db,
            engine,
            wallets,
            catalog,
            GiftingPolicy(
                max_count=settings.gift_max_count,
                diamonds_per_100_coins=settings.creator_diamonds_per_100_coins,
                age_rule=age_rule,
                paid_message_tiers=settings.paid_message_tiers,
            ),
            gift_limiter(rate_per_s=settings.gift_rate_per_s, burst=settings.gift_rate_burst),
            spending,
        )
        fractions = DiamondFractions(db, engine, wallets)
        payouts = Payouts(
            db,
            engine,
            wallets,
            PayoutPolicy(
                min_cents=settings.payout_min_cents,
                daily_cap_cents=settings.payout_daily_cap_cents,
                review_timeout_s=settings.payout_review_timeout_s,
                diamond_value_usd_micros=settings.diamond_value_usd_micros,
                age_rule=age_rule,
                auto=AutoApproval(
                    below_cents=settings.payout_auto_approve_below_cents,
                    min_history_days=settings.payout_auto_approve_min_history_days,
                    quiet_days=settings.payout_auto_approve_quiet_days,
                ),
            ),
            fractions,
        )
        payees = transfers = None
        if payout_provider is not None:
            fx = FxTable(settings.payout_currency_by_country, settings.payout_fx_rate_micros)
            payees = Payees(db, payout_provider, fx)
            transfers = PayoutTransfers(
                db,
                engine,
                wallets,
                payees,
                TransferPolicy(
                    retry_after_s=settings.payout_transfer_retry_after_s,
                    max_attempts=settings.payout_transfer_max_attempts,
                    sweep_interval_s=settings.payout_sweep_interval_s,
                ),
            )
            payouts.use_provider(payees, transfers.send)
            transfers.finish_approvals_with(payouts.finish_interrupted)
        subscriptions = Subscriptions(
            db,
            engine,
            wallets,
            SubscriptionPolicy(
                min_coins=settings.subscription_min_coins,
                max_coins=settings.subscription_max_coins,
                period_s=settings.subscription_period_s,
                grace_s=settings.subscription_grace_s,
                retry_s=settings.subscription_retry_s,
                diamonds_per_100_coins=settings.creator_diamonds_per_100_coins,
                age_rule=age_rule,
                sweep_interval_s=settings.subscription_sweep_interval_s,
            ),
            spending,
        )
        return cls(
            settings=settings,
            db=db,
            engine=engine,
            age_rule=age_rule,
            passwords=Passwords(
                time_cost=settings.password_time_cost,
                memory_kib=settings.password_memory_kib,
                at_once=settings.password_hashes_at_once,
                wait_s=settings.password_hash_wait_ms / 1000,
            ),
            wallets=wallets,
            catalog=catalog,
            gifting=gifting,
            spending=spending,
            reminders=Reminders(
                spending.months_and_averages,
                after_min=settings.spending_reminder_after_min,
                gap_min=settings.spending_reminder_gap_min,
            ),
            topups=TopUps(
                db,
                engine,
                wallets,
                provider,
                age_rule,
                spending,
                TopUpRisk(
                    block_s=settings.risk_topup_block_s,
                    flagged_coins_per_day=settings.risk_flagged_topup_coins_per_day,
                ),
            ),
            payouts=payouts,
            reversals=Reversals(db, engine, wallets),
            fractions=fractions,
            subscriptions=subscriptions,
            subscription_gifts=SubscriptionGifts(
                db,
                engine,
                wallets,
                subscriptions,
                max_count=settings.subscription_gift_max_count,
            ),
            payees=payees,
            payout_transfers=transfers,
        )

    async def wallet(self, user_id: int) -> WalletView:
        """The user's balances, their whole diamonds carried out of hundredths first (as a
        payout request does), so a wallet or statement never lags the settlement loop. With
        nothing to settle it is the one read it always was; with something, a ledger
        transfer and a second read."""
        view, hundredths = await asyncio.to_thread(self.wallets.view_and_hundredths, user_id)
        if hundredths < HUNDREDTHS_PER_DIAMOND:
            return view
        await self.fractions.settle(user_id)
        return await asyncio.to_thread(self.wallets.view, user_id)

    def seed_defaults(self) -> None:
        """An empty catalogue and package list get the defaults; edited ones are left alone."""
        try:
            with self.db.begin() as conn:
                seed_default_catalog(conn)
                seed_default_packages(conn)
        except IntegrityError:
            pass  # another process starting at the same moment seeded them first


def risk_rules_of(settings: Settings) -> RiskRules:
    """The rules engine's thresholds, from ``GIFTWAVE_RISK_*`` (docs/risk.md)."""
    return RiskRules(
        card_testing_failures=settings.risk_card_testing_failures,
        card_testing_window_s=settings.risk_card_testing_window_s,
        card_testing_small_minor=settings.risk_card_testing_small_minor,
        funnel_accounts=settings.risk_funnel_accounts,
        funnel_fresh_s=settings.risk_funnel_fresh_s,
        funnel_share_pct=settings.risk_funnel_share_pct,
        funnel_window_s=settings.risk_funnel_window_s,
        fast_cycle_s=settings.risk_fast_cycle_s,
        chargeback_min=settings.risk_chargeback_min,
        chargeback_rate_pct=settings.risk_chargeback_rate_pct,
        chargeback_window_s=settings.risk_chargeback_window_s,
        refund_after_gift_s=settings.risk_refund_after_gift_s,
        refund_after_gift_pct=settings.risk_refund_after_gift_pct,
        refund_after_gift_disputes=settings.risk_refund_after_gift_disputes,
        refund_after_gift_flags=settings.risk_refund_after_gift_flags,
        shared_card_accounts=settings.risk_shared_card_accounts,
        shared_card_window_s=settings.risk_shared_card_window_s,
    )
