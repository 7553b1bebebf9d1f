import type { StrategySpec } from '../../config/types.js';
import { blueGreen } from './blue-green.js';
import { canary } from './canary.js';
import { rolling } from './rolling.js';
import type { Strategy } from './types.js';

export function strategyFor(spec: StrategySpec): Strategy {
  switch (spec.type) {
    case 'rolling':
      return rolling;
    case 'blue-green':
      return blueGreen;
    case 'canary':
      return canary;
  }
}
