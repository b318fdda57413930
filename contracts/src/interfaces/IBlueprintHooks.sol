// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IBlueprintHooks
/// @notice Optional callbacks of a blueprint. The protocol calls them with a gas cap. A veto hook that reverts or
/// returns false refuses the action; a notification hook that fails is ignored (it never blocks settlement).
interface IBlueprintHooks {
    /// @notice May `operator` serve this blueprint? Called when a service naming it is requested.
    function allowOperator(uint64 blueprintId, address operator) external view returns (bool);

    /// @notice May `owner` request a service with these operators?
    function allowServiceRequest(uint64 blueprintId, address owner, address[] calldata operators)
        external
        view
        returns (bool);

    /// @notice May `caller` open a call of job `jobIndex` on `serviceId`?
    function allowJobCall(uint64 serviceId, uint8 jobIndex, address caller) external view returns (bool);

    /// @notice A call was settled with `resultHash`.
    function onResult(uint64 serviceId, uint256 callId, bytes32 resultHash) external;
}
