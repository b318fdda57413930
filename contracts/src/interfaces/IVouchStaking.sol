// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IVouchStaking
/// @notice Operator stake pools: self-stake plus delegations with share accounting, an unbonding queue whose pending
/// withdrawals stay slashable, time-locked commission, jailing, and payment-token rewards for delegators.
/// @dev Implemented by `VouchStaking`. Only the slasher (set once) may slash and jail; only the protocol (set once)
/// may distribute rewards. Slashing reduces a pool's assets, so every share (active or unbonding) loses the same fraction.
interface IVouchStaking {
    /// @notice Where slashed stake goes: `toPayer` credited to `payer`, `toReporter` to `reporter` (both claimable
    /// with `claimSlashed`), the rest burned.
    struct SlashSplit {
        address payer;
        uint256 toPayer;
        address reporter;
        uint256 toReporter;
    }

    /// @notice Stake token (any ERC-20).
    function stakeToken() external view returns (address);

    /// @notice Token delegator rewards are paid in: the protocol's payment token.
    function paymentToken() external view returns (address);

    /// @notice Delay between an unstake request and its withdrawal; longer than any job deadline plus dispute window.
    function unbondingDelay() external view returns (uint64);

    /// @notice True if `operator` registered (and was not removed).
    function isOperator(address operator) external view returns (bool);

    /// @notice True while `operator` is jailed (cannot join or approve new services).
    function isJailed(address operator) external view returns (bool);

    /// @notice Slashable stake of `operator`: every asset of its pool, active and unbonding.
    function slashableStake(address operator) external view returns (uint256);

    /// @notice Active (not unbonding) stake of `operator`: the weight used for quorums when a service is snapshotted.
    function activeStake(address operator) external view returns (uint256);

    /// @notice Current commission of `operator` in basis points.
    function commissionBps(address operator) external view returns (uint16);

    /// @notice Slashes `amount` (capped at the pool's assets) from `operator`'s pool and credits it per `split`.
    /// @dev Only the slasher. Returns what was actually slashed (≤ amount); `split` amounts are scaled down
    /// proportionally when the cap applies. Emits `Slashed`.
    function slash(address operator, uint256 amount, SlashSplit calldata split) external returns (uint256 slashed);

    /// @notice Jails `operator` until `until` (unix seconds). Only the slasher.
    function jail(address operator, uint64 until) external;

    /// @notice Pays `amount` of the payment token, already transferred to this contract by the protocol, to the
    /// delegators of `operator` pro rata to their active shares. Only the protocol.
    function distributeRewards(address operator, uint256 amount) external;
}
