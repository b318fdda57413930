// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {KeyRegistry} from "../../src/KeyRegistry.sol";
import {VouchDigest} from "../../src/bls/VouchDigest.sol";
import {IVouchProtocol} from "../../src/interfaces/IVouchProtocol.sol";
import {VouchProtocol} from "../../src/protocol/VouchProtocol.sol";
import {VouchSlasher} from "../../src/slashing/VouchSlasher.sol";
import {VouchStaking} from "../../src/staking/VouchStaking.sol";
import {StakeToken} from "../../src/tokens/StakeToken.sol";
import {VouchUSD} from "../../src/tokens/VouchUSD.sol";
import {BlsSigner} from "../utils/BlsSigner.sol";
import {SlashSigner} from "../slashing/SlashSigner.sol";

/// @title SystemMath
/// @notice The money rules of docs/protocol.md ("Money flows"), computed independently of the contracts so the
/// integration tests can predict every balance to the unit.
library SystemMath {
    /// @notice Basis-point denominator.
    uint256 internal constant BPS = 10_000;

    /// @notice How one payment divides among the parties (signers in slot order).
    struct Split {
        uint256 developerFee; // → blueprint owner (claimable in the protocol)
        uint256 protocolFee; // → treasury (claimable)
        uint256 dust; // integer-division remainder → treasury (claimable)
        uint256[] slots; // signer slots, ascending
        uint256[] commissions; // per signer → operator (claimable)
        uint256[] rewards; // per signer → its pool's delegators (VouchStaking)
    }

    /// @notice Splits `price` among the `bitmap` signers of a service with signer weights `stakes` (each operator's
    /// snapshot stake capped by its slashable stake now) and current `commissionBps` (both in slot order):
    /// `developerFee = price·dev/10⁴`, `protocolFee = price·proto/10⁴`, `share_i = rest·w_i/Σ signers' w`,
    /// `commission_i = share_i·commission_i/10⁴`, `reward_i = share_i − commission_i`, `dust = rest − Σ share_i`.
    function split(
        uint256 price,
        uint256 developerFeeBps,
        uint256 protocolFeeBps,
        uint256[] memory stakes,
        uint256[] memory commissionBps,
        uint256 bitmap
    ) internal pure returns (Split memory s) {
        uint256 count;
        uint256 signerStake;
        for (uint256 i; i < stakes.length; ++i) {
            if ((bitmap >> i) & 1 == 1) {
                ++count;
                signerStake += stakes[i];
            }
        }
        s.developerFee = price * developerFeeBps / BPS;
        s.protocolFee = price * protocolFeeBps / BPS;
        uint256 rest = price - s.developerFee - s.protocolFee;
        s.slots = new uint256[](count);
        s.commissions = new uint256[](count);
        s.rewards = new uint256[](count);
        uint256 shared;
        uint256 k;
        for (uint256 i; i < stakes.length; ++i) {
            if ((bitmap >> i) & 1 == 0) continue;
            uint256 share = Math.mulDiv(rest, stakes[i], signerStake);
            s.slots[k] = i;
            s.commissions[k] = share * commissionBps[i] / BPS;
            s.rewards[k] = share - s.commissions[k];
            shared += share;
            ++k;
        }
        s.dust = rest - shared;
    }

    /// @notice Adds `b` into `a` (same signers): the split of a batch is the sum of its calls' splits.
    function add(Split memory a, Split memory b) internal pure {
        a.developerFee += b.developerFee;
        a.protocolFee += b.protocolFee;
        a.dust += b.dust;
        for (uint256 k; k < a.slots.length; ++k) {
            a.commissions[k] += b.commissions[k];
            a.rewards[k] += b.rewards[k];
        }
    }

    /// @notice Sum of every part of a split: must equal the payment(s).
    function total(Split memory s) internal pure returns (uint256 sum) {
        sum = s.developerFee + s.protocolFee + s.dust;
        for (uint256 k; k < s.slots.length; ++k) {
            sum += s.commissions[k] + s.rewards[k];
        }
    }

    /// @notice Amount a slash of `bps` takes from `stake` (the pool's assets, of which `own` is the operator's own),
    /// and the payer's and reporter's parts (the rest is burned), as docs/protocol.md "Faults" specifies: together
    /// they get at most half of the operator's own loss, scaled proportionally (bps ≤ 10,000 in these tests).
    function slash(uint256 stake, uint256 own, uint256 bps, uint256 payerBps, uint256 reporterBps)
        internal
        pure
        returns (uint256 amount, uint256 toPayer, uint256 toReporter, uint256 burned)
    {
        amount = stake * bps / BPS;
        toPayer = amount * payerBps / BPS;
        toReporter = amount * reporterBps / BPS;
        if (amount != 0) {
            uint256 cap = Math.mulDiv(amount, own, stake) / 2;
            uint256 payout = toPayer + toReporter;
            if (payout > cap) {
                toPayer = Math.mulDiv(toPayer, cap, payout);
                toReporter = Math.mulDiv(toReporter, cap, payout);
            }
        }
        burned = amount - toPayer - toReporter;
    }
}

/// @title SystemBase
/// @notice The whole Vouch system, real contracts only, deployed in the documented order
/// (docs/design/protocol-contracts.md): VouchUSD, StakeToken, KeyRegistry (etched at the golden vectors' address, chain
/// id 31337, so the vectors' proofs of possession verify), VouchStaking, VouchProtocol (ProtocolAdmin linked by forge),
/// VouchSlasher, then `staking.initialize(protocol, slasher)`.
/// @dev Fixture: golden-vector operators 0..3 register their BLS keys (vector PoPs) and then as staking operators with
/// minted stake; `delegator` delegates to operator 0. Operators 0..2 run the fixture service of the fixture blueprint
/// (two jobs, 2/3 quorum, 10 % developer fee, 5 % protocol fee, slashing policy below); operator 3 is registered but in
/// no service. Snapshot stakes are 15,000 / 20,000 / 30,000 VST (operator 0: 10,000 self + 5,000 delegated), so
/// slots {1, 2} reach the quorum and slots {0, 1} (35/65) do not. A signer weighs its snapshot stake capped by its
/// slashable stake now (docs/protocol.md "Settling"). Payers hold vUSD and approved the protocol.
abstract contract SystemBase is SlashSigner {
    // ---------------------------------------------------------------------------------------------------------------
    // Configuration
    // ---------------------------------------------------------------------------------------------------------------

    uint64 internal constant UNBONDING_DELAY = 7 days;
    uint64 internal constant COMMISSION_DELAY = 3 days;
    uint256 internal constant MIN_SELF_STAKE = 1000e18;
    uint16 internal constant PROTOCOL_FEE_BPS = 500;

    /// @dev Job 0: 1 vUSD, 10 minutes. Job 1: 0.333333 vUSD, 1 hour.
    uint128 internal constant PRICE0 = 1_000_000;
    uint32 internal constant DEADLINE0 = 10 minutes;
    uint128 internal constant PRICE1 = 333_333;
    uint32 internal constant DEADLINE1 = 1 hours;

    /// @dev Policy.
    uint16 internal constant QUORUM_BPS = 6667;
    uint16 internal constant MIN_SIGNERS = 2;
    uint16 internal constant DEVELOPER_FEE_BPS = 1000;
    uint16 internal constant EQUIVOCATION_BPS = 5000;
    uint16 internal constant DEVIATION_BPS = 2000;
    uint16 internal constant MISSED_BPS = 100;
    uint16 internal constant PAYER_SHARE_BPS = 5000;
    uint16 internal constant REPORTER_SHARE_BPS = 1000;
    uint32 internal constant DISPUTE_WINDOW = 1 days;
    uint8 internal constant JAIL_AFTER_MISSES = 3;

    /// @dev Operators registered (vector keys 0..N-1), and the size of the fixture service (slots 0..2).
    uint256 internal constant N_OPERATORS = 4;
    uint256 internal constant SERVICE_SIZE = 3;
    uint256 internal constant ALL_SIGNERS = 0x7;

    uint256 internal constant START = 1_700_000_000;
    uint256 internal constant PRECISION = 1e36;
    address internal constant BURN = 0x000000000000000000000000000000000000dEaD;

    // ---------------------------------------------------------------------------------------------------------------
    // Contracts and actors
    // ---------------------------------------------------------------------------------------------------------------

    VouchUSD internal usd;
    StakeToken internal stk;
    KeyRegistry internal registry;
    VouchStaking internal staking;
    VouchProtocol internal protocol;
    VouchSlasher internal slasher;

    /// @dev Vector keys and secret keys of operators 0..N-1 (slot order of the fixture service for 0..2).
    Key[] internal keys;
    uint256[] internal secretKeys;
    address[] internal operators;
    uint256[] internal selfStakes;
    uint16[] internal commissions;

    address internal treasury = address(0x7EA5);
    address internal developer = address(0xDE7);
    address internal serviceOwner = address(0x50B);
    address internal arbiter = address(0xA4B);
    address internal delegator = address(0xDE1E);
    address internal reporter = address(0x4E9047);
    address internal gateway = address(0x6A7E);
    address internal keeper = address(0x4EE9);
    uint256 internal payerKey = 0xA11CE;
    uint256 internal payer2Key = 0xB0B;
    address internal payer;
    address internal payer2;

    uint256 internal constant DELEGATION = 5000e18;
    uint256 internal constant PAYER_FUNDS = 1_000_000e6;

    uint64 internal blueprintId;
    uint64 internal serviceId;
    /// @dev Secret keys of the fixture service's operators, slot order (what certificates are signed with).
    uint256[] internal serviceSecretKeys;

    /// @dev x402 nonce counter.
    uint256 internal nextNonce = 1;

    // ---------------------------------------------------------------------------------------------------------------
    // Setup
    // ---------------------------------------------------------------------------------------------------------------

    function setUp() public virtual {
        vm.warp(START);
        string memory json = _readVectors();
        _deploySystem(json);

        Key[] memory all = _keys(json);
        uint256[] memory sks = _secretKeys(json);
        selfStakes.push(10_000e18);
        selfStakes.push(20_000e18);
        selfStakes.push(30_000e18);
        selfStakes.push(10_000e18);
        commissions.push(1000);
        commissions.push(500);
        commissions.push(2000);
        commissions.push(0);
        for (uint256 i; i < N_OPERATORS; ++i) {
            keys.push(all[i]);
            secretKeys.push(sks[i]);
            operators.push(all[i].operator);
            vm.label(all[i].operator, string.concat("op", _toString(i)));
            _registerOperator(all[i], commissions[i], selfStakes[i]);
        }
        _fundStake(delegator, 1_000_000e18);
        vm.prank(delegator);
        staking.delegate(operators[0], DELEGATION);

        payer = vm.addr(payerKey);
        payer2 = vm.addr(payer2Key);
        _fundPayer(payer);
        _fundPayer(payer2);

        blueprintId = _createBlueprint();
        serviceId = _activeService(_firstOperators(SERVICE_SIZE));
        for (uint256 i; i < SERVICE_SIZE; ++i) {
            serviceSecretKeys.push(secretKeys[i]);
        }

        vm.label(address(usd), "vUSD");
        vm.label(address(stk), "VST");
        vm.label(address(staking), "staking");
        vm.label(address(protocol), "protocol");
        vm.label(address(slasher), "slasher");
        vm.label(address(registry), "registry");
    }

    /// @dev Deploys the real contracts in the documented order.
    function _deploySystem(string memory json) internal {
        usd = new VouchUSD(address(this));
        stk = new StakeToken(address(this));
        registry = _deployRegistry(json); // chain id 31337, registry at the vectors' address
        staking = new VouchStaking(
            IERC20(address(stk)), IERC20(address(usd)), registry, UNBONDING_DELAY, COMMISSION_DELAY, MIN_SELF_STAKE
        );
        protocol = new VouchProtocol(IERC20(address(usd)), staking, registry, treasury, PROTOCOL_FEE_BPS);
        slasher = new VouchSlasher(protocol, staking, registry);
        staking.initialize(address(protocol), address(slasher));
    }

    /// @dev The operator registers its vector key (with the vector PoP), then registers in staking with `stake`.
    function _registerOperator(Key memory key, uint16 commissionBps, uint256 stake) internal {
        vm.prank(key.operator);
        registry.registerKey(key.pubkey, key.pop);
        _fundStake(key.operator, stake);
        vm.prank(key.operator);
        staking.registerOperator("https://operator.vouch.example", commissionBps, stake);
    }

    /// @dev Mints stake tokens to `account` and approves staking for all of them.
    function _fundStake(address account, uint256 amount) internal {
        stk.mint(account, amount);
        vm.prank(account);
        stk.approve(address(staking), type(uint256).max);
    }

    /// @dev Mints vUSD to `account` and approves the protocol (for `callJob`).
    function _fundPayer(address account) internal {
        usd.mint(account, PAYER_FUNDS);
        vm.prank(account);
        usd.approve(address(protocol), type(uint256).max);
    }

    function _jobs() internal pure returns (IVouchProtocol.Job[] memory jobs) {
        jobs = new IVouchProtocol.Job[](2);
        jobs[0] =
            IVouchProtocol.Job({price: PRICE0, deadline: DEADLINE0, verification: IVouchProtocol.Verification.Exact});
        jobs[1] =
            IVouchProtocol.Job({price: PRICE1, deadline: DEADLINE1, verification: IVouchProtocol.Verification.Exact});
    }

    function _policy() internal pure returns (IVouchProtocol.Policy memory) {
        return IVouchProtocol.Policy({
            quorumBps: QUORUM_BPS,
            minSigners: MIN_SIGNERS,
            developerFeeBps: DEVELOPER_FEE_BPS,
            equivocationSlashBps: EQUIVOCATION_BPS,
            deviationSlashBps: DEVIATION_BPS,
            missedDeadlineSlashBps: MISSED_BPS,
            payerShareBps: PAYER_SHARE_BPS,
            reporterShareBps: REPORTER_SHARE_BPS,
            disputeWindow: DISPUTE_WINDOW,
            jailAfterMisses: JAIL_AFTER_MISSES
        });
    }

    /// @dev The fixture blueprint, owned by `developer`, arbitrated by `arbiter`, no hooks.
    function _createBlueprint() internal returns (uint64) {
        vm.prank(developer);
        return protocol.createBlueprint(
            "ipfs://bafy-vouch-blueprint", keccak256("blueprint metadata"), _jobs(), _policy(), arbiter, address(0)
        );
    }

    /// @dev Operators 0..n-1.
    function _firstOperators(uint256 n) internal view returns (address[] memory ops) {
        ops = new address[](n);
        for (uint256 i; i < n; ++i) {
            ops[i] = operators[i];
        }
    }

    /// @dev `serviceOwner` requests a public service of the fixture blueprint run by `ops`, and each approves it.
    function _activeService(address[] memory ops) internal returns (uint64 id) {
        vm.prank(serviceOwner);
        id = protocol.requestService(blueprintId, ops, uint64(START + 3650 days), true, new address[](0));
        for (uint256 i; i < ops.length; ++i) {
            vm.prank(ops[i]);
            protocol.approveService(id);
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Calls
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev `from` opens a call of `job` on the fixture service with `callJob` (ERC-20 `transferFrom`).
    function _callJob(address from, uint8 job, bytes memory inputs) internal returns (uint256 callId) {
        vm.prank(from);
        callId = protocol.callJob(serviceId, job, inputs);
    }

    /// @dev Price of a job of the fixture blueprint.
    function _price(uint8 job) internal pure returns (uint256) {
        return job == 0 ? PRICE0 : PRICE1;
    }

    /// @dev The EIP-712 domain separator of Vouch USD, built the standard way (not read from the token).
    function _usdDomainSeparator() internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256(bytes("Vouch USD")),
                keccak256(bytes("1")),
                block.chainid,
                address(usd)
            )
        );
    }

    /// @dev EIP-712 digest of an EIP-3009 `TransferWithAuthorization`.
    function _transferAuthDigest(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) internal view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
                ),
                from,
                to,
                value,
                validAfter,
                validBefore,
                nonce
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", _usdDomainSeparator(), structHash));
    }

    /// @dev Expected call id of the call of job `jobIndex` on `service` paid by the x402 authorization `(from, nonce)`,
    /// computed from its definition rather than through the protocol:
    /// `uint256(keccak256(abi.encode(keccak256("vouch.v1.paid-call"), uint64 service, uint8 jobIndex, from, nonce)))`.
    function _paidCallId(uint64 service, uint8 jobIndex, address from, bytes32 nonce) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(keccak256("vouch.v1.paid-call"), service, jobIndex, from, nonce)));
    }

    /// @dev An x402 `exact` payment: `key` signs a `TransferWithAuthorization` of the job price to the protocol, valid
    /// for five minutes, with a fresh nonce, for a call of `job` on `service` with `inputsHash`.
    function _paidCall(uint256 key, uint64 service, uint8 job, bytes32 inputsHash)
        internal
        returns (VouchProtocol.PaidCall memory p)
    {
        p.serviceId = service;
        p.jobIndex = job;
        p.inputsHash = inputsHash;
        p.from = vm.addr(key);
        p.value = _price(job);
        p.validAfter = block.timestamp - 1;
        p.validBefore = block.timestamp + 5 minutes;
        p.nonce = keccak256(abi.encode("x402 nonce", nextNonce++));
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(key, _transferAuthDigest(p.from, address(protocol), p.value, p.validAfter, p.validBefore, p.nonce));
        p.signature = abi.encodePacked(r, s, v);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Certificates
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev The protocol's result digest of a call (its service and inputs hash read from the chain).
    function _resultDigest(uint256 callId, bytes32 resultHash) internal view returns (bytes32) {
        IVouchProtocol.Call memory c = protocol.getCall(callId);
        return VouchDigest.resultDigest(block.chainid, address(protocol), c.serviceId, callId, c.inputsHash, resultHash);
    }

    /// @dev Aggregate signature of the fixture service's `bitmap` signers over the result digest of a call.
    function _certify(uint256 callId, bytes32 resultHash, uint256 bitmap) internal view returns (bytes memory) {
        return BlsSigner.signBitmap(serviceSecretKeys, bitmap, _resultDigest(callId, resultHash));
    }

    /// @dev The batch digest of `callIds` / `resultHashes` (leaves in order) on the fixture service.
    function _batchDigest(uint256[] memory callIds, bytes32[] memory resultHashes) internal view returns (bytes32) {
        bytes32[] memory leaves = new bytes32[](callIds.length);
        for (uint256 i; i < callIds.length; ++i) {
            leaves[i] = VouchDigest.batchLeaf(callIds[i], protocol.getCall(callIds[i]).inputsHash, resultHashes[i]);
        }
        // forge-lint: disable-next-line(unsafe-typecast)
        uint32 count = uint32(callIds.length); // small test batches
        return
            VouchDigest.batchDigest(block.chainid, address(protocol), serviceId, VouchDigest.batchRoot(leaves), count);
    }

    /// @dev Aggregate signature of the `bitmap` signers over a batch digest.
    function _certifyBatch(uint256[] memory callIds, bytes32[] memory resultHashes, uint256 bitmap)
        internal
        view
        returns (bytes memory)
    {
        return BlsSigner.signBitmap(serviceSecretKeys, bitmap, _batchDigest(callIds, resultHashes));
    }

    /// @dev Single-form evidence: operator `slot` of the fixture service signs `resultHash` for a call.
    function _evidence(uint256 slot, uint256 callId, bytes32 resultHash)
        internal
        view
        returns (VouchSlasher.SignedResult memory)
    {
        return _single(
            serviceSecretKeys[slot],
            address(protocol),
            serviceId,
            callId,
            protocol.getCall(callId).inputsHash,
            resultHash
        );
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Expected money
    // ---------------------------------------------------------------------------------------------------------------

    /// @dev The split of `price` among `bitmap` signers of the fixture service (weights, current commissions).
    function _expectedSplit(uint256 price, uint256 bitmap) internal view returns (SystemMath.Split memory) {
        IVouchProtocol.Service memory s = protocol.getService(serviceId);
        uint256[] memory bps = new uint256[](s.operators.length);
        for (uint256 i; i < s.operators.length; ++i) {
            bps[i] = staking.commissionBps(s.operators[i]);
        }
        return SystemMath.split(price, DEVELOPER_FEE_BPS, PROTOCOL_FEE_BPS, _weights(), bps, bitmap);
    }

    /// @dev Each fixture-service operator's weight now: `min(snapshot stake, slashable stake now)` (docs/protocol.md
    /// "Settling").
    function _weights() internal view returns (uint256[] memory weights) {
        IVouchProtocol.Service memory s = protocol.getService(serviceId);
        weights = new uint256[](s.operators.length);
        for (uint256 i; i < s.operators.length; ++i) {
            weights[i] = Math.min(s.stakes[i], staking.slashableStake(s.operators[i]));
        }
    }

    /// @dev `account` claims its protocol balance; returns what it received (checked against the transfer).
    function _claim(address account) internal returns (uint256 amount) {
        uint256 before = usd.balanceOf(account);
        vm.prank(account);
        amount = protocol.claim();
        assertEq(usd.balanceOf(account) - before, amount, "claim transferred");
    }

    /// @dev `account` claims its rewards from `operator`'s pool; returns what it received.
    function _claimRewards(address account, address operator) internal returns (uint256 amount) {
        uint256 before = usd.balanceOf(account);
        vm.prank(account);
        amount = staking.claimRewards(operator);
        assertEq(usd.balanceOf(account) - before, amount, "claimRewards transferred");
    }

    /// @dev `account` claims its slashed-stake credit; returns what it received.
    function _claimSlashed(address account) internal returns (uint256 amount) {
        uint256 before = stk.balanceOf(account);
        vm.prank(account);
        amount = staking.claimSlashed();
        assertEq(stk.balanceOf(account) - before, amount, "claimSlashed transferred");
    }

    /// @dev The protocol holds exactly what it owes, and staking exactly its reward reserve.
    function _assertBooksBalance() internal view {
        assertEq(usd.balanceOf(address(protocol)), protocol.accounted(), "protocol vUSD = accounted");
        assertEq(usd.balanceOf(address(staking)), staking.rewardReserve(), "staking vUSD = reward reserve");
    }
}
